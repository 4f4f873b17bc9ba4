"""The compiled methods of dataclasses, kept between runs the way Python keeps a module's bytecode (kept.py).

Every @dataclass writes the source of the methods it generates (__init__, __repr__, __eq__, __hash__, and
__setattr__/__delattr__ when frozen) and compiles it with exec() each time its module is imported. Python caches a
module's own bytecode in __pycache__, not these: on Python 3.11 compiling them is ~20 ms of a no-op
`premigrate up` (about 280 small sources for the ~50 dataclasses a run loads), an eighth of the whole run and most
of what premigrate adds to the driver's own start-up (bench/ measures it against that floor). Python 3.13 compiles
one source per class instead, through the same exec(), and the cache serves it alike.

The file holds {source: code}. `install()` puts a caching exec() in the dataclasses module's namespace, where its
code generator looks the name up before the builtin: a source seen before is not compiled again; what a run
compiled is added to the file at the end of the run (kept.save).

Why this is safe: a code object is looked up by the exact source text it was compiled from, compiled without
inheriting this module's __future__ flags (dataclasses' own exec() inherits none), and the file is read with the
same trust as the .pyc files beside it. A file that cannot be read or parsed is ignored, and a Python whose
dataclasses stops calling exec() by that name just compiles as before.
"""

from __future__ import annotations

import builtins
import os
from types import CodeType
from typing import Any

from premigrate.kept import KeptFile, default_path

_builtin_exec = builtins.exec


class DataclassCache(KeptFile):
    """The sources compiled so far (from the file, or by this run)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, str)
        self.reused = 0

    @property
    def compiled(self) -> int:
        """Sources this process compiled (none when the file held them all)."""
        return self.added

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /, *args: Any, **kwargs: Any) -> None:
        """exec() as dataclasses calls it, with the compiled source looked up first."""
        if not isinstance(source, str) or args or kwargs:
            _builtin_exec(source, globals, locals, *args, **kwargs)
            return
        code = self.get(source)
        if isinstance(code, CodeType):
            self.reused += 1
        else:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self.put(source, code)
        _builtin_exec(code, globals, locals)


_installed: DataclassCache | None = None


def install(path: str | os.PathLike[str] | None = None) -> DataclassCache:
    """Route dataclasses' exec() through the cache at `path` (default: premigrate's __pycache__). Idempotent."""
    global _installed
    if _installed is None or (path is not None and os.fspath(path) != _installed.file):
        from premigrate.stand_ins import import_without

        # inspect: read only for a class without a docstring; copy: only by asdict() and astuple() (stand_ins.py).
        import_without("dataclasses", "inspect", "copy")
        import dataclasses

        _installed = DataclassCache(path or default_path("dataclasses"))
        dataclasses.exec = _installed.exec  # type: ignore[attr-defined]
    return _installed


def installed() -> DataclassCache | None:
    return _installed
