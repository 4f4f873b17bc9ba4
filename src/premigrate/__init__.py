"""premigrate: apply pending SQL migrations before the application starts."""

from premigrate import collector as _collector

_collector.pause_for_start_up()  # only when premigrate is the program, until its command is loaded (collector.py)

from premigrate import kept as _kept  # noqa: E402

__version__ = "0.1.0"

# Before any of premigrate's dataclasses is defined and any driver imported: the methods dataclasses generate and the
# patterns re compiles are built once, not at every start (kept.py).
_kept.install()
