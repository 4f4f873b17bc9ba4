"""One module per command; each turns a Config into an exit code."""
