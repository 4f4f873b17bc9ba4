"""premigrate: apply pending SQL migrations before the application starts."""

from premigrate import collector as _collector

_collector.pause_for_start_up()  # only when premigrate is the program, until its command is loaded (collector.py)

from premigrate import dataclass_cache as _dataclass_cache  # noqa: E402

__version__ = "0.1.0"

# Before any of premigrate's dataclasses is defined: their generated methods are compiled once, not at every start.
_dataclass_cache.install()
