"""The compiled methods of dataclasses, kept between runs the way Python keeps a module's bytecode.

Every @dataclass writes the source of the methods it generates (__init__, __repr__, __eq__, __hash__, and
__setattr__/__delattr__ when frozen) and compiles it with exec() each time its module is imported. Python caches a
module's own bytecode in __pycache__, not these: on Python 3.11 compiling them is ~20 ms of a no-op
`premigrate up` (about 280 small sources for the ~50 dataclasses a run loads), an eighth of the whole run and most
of what premigrate adds to the driver's own start-up (bench/ measures it against that floor). Python 3.13 compiles
one source per class instead, through the same exec(), and the cache serves it alike.

This module keeps {source: code object} in one marshal file beside premigrate's bytecode, named with the
interpreter's cache tag (marshal's format is the interpreter's own). `install()` puts a caching exec() in the
dataclasses module's namespace, where its code generator looks the name up before the builtin: a source seen
before is not compiled again; what a run compiled is added to the file by `save()` at the end of the run. The
file is written only where Python would write bytecode (not under PYTHONDONTWRITEBYTECODE or on a read-only
package folder, the container image's case); the image and bench/run fill it ahead with
`premigrate.dataclass_cache.fill()`, as they compile the bytecode ahead.

Why this is safe: a code object is looked up by the exact source text it was compiled from, compiled without
inheriting this module's __future__ flags (dataclasses' own exec() inherits none), and the file is read with the
same trust as the .pyc files beside it. A file that cannot be read or parsed is ignored, and a Python whose
dataclasses stops calling exec() by that name just compiles as before.
"""

from __future__ import annotations

import builtins
import contextlib
import marshal
import os
import sys
from types import CodeType
from typing import Any

from premigrate.stand_ins import import_without

# pathlib imports urllib.parse, which imports ipaddress for one check of a bracketed (IPv6) host: stood in until a URL
# has one (premigrate/stand_ins.py), it costs a no-op run nothing.
import_without("urllib.parse", "ipaddress")
from pathlib import Path  # noqa: E402

_builtin_exec = builtins.exec


class DataclassCache:
    """The sources compiled so far (from the file, or by this run), and whether this run added any."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Each code object stays marshalled until a class asks for it: a run loads about half of what the file holds.
        self.code: dict[str, bytes] = {}
        self.compiled = 0  # sources this process compiled (none when the file held them all)
        self.reused = 0
        self.used: set[str] = set()  # the sources this process asked for
        try:
            loaded = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(loaded, dict):
            self.code = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, bytes)}

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /, *args: Any, **kwargs: Any) -> None:
        """exec() as dataclasses calls it, with the compiled source looked up first."""
        if not isinstance(source, str) or args or kwargs:
            _builtin_exec(source, globals, locals, *args, **kwargs)
            return
        self.used.add(source)
        code = self._cached(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self.code[source] = marshal.dumps(code)
            self.compiled += 1
        else:
            self.reused += 1
        _builtin_exec(code, globals, locals)

    def _cached(self, source: str) -> CodeType | None:
        stored = self.code.get(source)
        if stored is None:
            return None
        try:
            code = marshal.loads(stored)
        except (EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, CodeType) else None

    def save(self, *, force: bool = False) -> bool:
        """Write the file when this run compiled something, where Python would write bytecode; always when `force`.
        Atomic: a concurrent reader sees the old file or the new one. False when nothing was written."""
        if not force and (not self.compiled or sys.dont_write_bytecode):
            return False
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            temporary.write_bytes(marshal.dumps(self.code))
            os.replace(temporary, self.path)
        except OSError:  # a read-only package folder: the run is right, only not faster next time
            with contextlib.suppress(OSError):
                temporary.unlink()
            return False
        self.compiled = 0
        return True


def default_path() -> Path:
    return Path(__file__).parent / "__pycache__" / f"dataclasses.{sys.implementation.cache_tag}.marshal"


_installed: DataclassCache | None = None


def install(path: Path | None = None) -> DataclassCache:
    """Route dataclasses' exec() through the cache at `path` (default: premigrate's __pycache__). Idempotent."""
    global _installed
    if _installed is None or (path is not None and path != _installed.path):
        from premigrate.stand_ins import import_without

        import_without("dataclasses", "inspect")  # read only for a class without a docstring (stand_ins.py)
        import dataclasses

        _installed = DataclassCache(path or default_path())
        dataclasses.exec = _installed.exec  # type: ignore[attr-defined]
    return _installed


def installed() -> DataclassCache | None:
    return _installed


def fill() -> int:
    """Import every premigrate module, and write the file with what they asked for (entries of classes since
    edited are dropped); how many sources it holds. For a fresh interpreter: what it imported before is missed."""
    import importlib
    import pkgutil

    import premigrate

    cache = install()
    for module in pkgutil.walk_packages(premigrate.__path__, "premigrate."):
        if module.name.endswith(("__main__", "._otel")):  # runs the CLI / needs the optional OpenTelemetry extra
            continue
        importlib.import_module(module.name)
    cache.code = {source: code for source, code in cache.code.items() if source in cache.used}
    cache.save(force=True)
    return len(cache.code)
