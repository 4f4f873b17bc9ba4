"""Effects in order: sessions, waiting, the runner lock, applying steps, interrupts."""
