"""premigrate: apply pending SQL migrations before the application starts."""

from premigrate import collector as _collector

_command = _collector.started_as_command()
if _command:
    _collector.pause_for_start_up()  # until the command's code is loaded (collector.py)

from premigrate import kept as _kept  # noqa: E402

__version__ = "0.1.0"

# Before any of premigrate's dataclasses is defined and any driver imported: the methods dataclasses generate and the
# patterns re compiles are built once, not at every start (kept.py).
_kept.install(patterns=_command)
