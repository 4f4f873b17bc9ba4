"""What premigrate's start-up compiles, kept between runs beside its bytecode: the shared file of the two caches.

Python keeps a module's bytecode in __pycache__, but not what a module compiles while it runs: the methods every
@dataclass generates (dataclass_cache.py) and the regular expressions its imports compile (regex_cache.py, PyMySQL's
and psycopg's included). A no-op `up` runs on every pod start, and bench/ measures it against the driver's own floor.

Each cache is one marshal file, {key: marshalled value}, named with the interpreter's cache tag (marshal's format is
the interpreter's own). A value stays marshalled until a run asks for it. The image and bench/run fill both ahead
with `fill()`, as they compile the bytecode ahead. Besides, a run adds the dataclass methods it compiled where
Python would write bytecode (not under PYTHONDONTWRITEBYTECODE or on a read-only package folder, the container
image's case); the pattern file is written by fill() alone (a run's own patterns may hold its secrets:
regex_cache.py). Writes are atomic. A file that cannot be read or has the wrong shape is ignored: it costs speed,
never a run.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

# No pathlib here: it imports urllib.parse, which compiles a pattern at import, and the pattern cache is installed
# before that (install()).


def default_path(name: str) -> str:
    return os.path.join(os.path.dirname(__file__), "__pycache__", f"{name}.{sys.implementation.cache_tag}.marshal")


class KeptFile:
    """The entries of one cache file (those read, and those this run added), and which ones this run used."""

    def __init__(self, path: str | os.PathLike[str], key_type: type | tuple[type, ...]) -> None:
        self.file = os.fspath(path)
        self.entries: dict[object, bytes] = {}
        self.added = 0  # entries this process added (none when the file held them all)
        self.used: set[object] = set()  # the keys this process asked for
        try:
            with open(self.file, "rb") as stream:
                loaded = marshal.loads(stream.read())
        except (OSError, EOFError, ValueError, TypeError):
            return
        if isinstance(loaded, dict):
            self.entries = {k: v for k, v in loaded.items() if isinstance(k, key_type) and isinstance(v, bytes)}

    @property
    def path(self) -> Path:
        from pathlib import Path

        return Path(self.file)

    def get(self, key: object) -> object | None:
        """The value kept for `key`, unmarshalled; None when there is none or it does not read."""
        self.used.add(key)
        stored = self.entries.get(key)
        if stored is None:
            return None
        try:
            value: object = marshal.loads(stored)
        except (EOFError, ValueError, TypeError):
            return None
        return value

    def put(self, key: object, value: Any) -> None:
        self.used.add(key)
        self.entries[key] = marshal.dumps(value)
        self.added += 1

    def keep_only_used(self) -> None:
        """Drop the entries this process never asked for (fill(): the entries of code since edited)."""
        self.entries = {key: value for key, value in self.entries.items() if key in self.used}

    def save(self, *, force: bool = False) -> bool:
        """Write the file when this run added something, where Python would write bytecode; always when `force`.
        Atomic: a concurrent reader sees the old file or the new one. False when nothing was written."""
        if not force and (not self.added or sys.dont_write_bytecode):
            return False
        # A name no other writer uses, even one with the same process id (PID 1 of two containers sharing a folder).
        temporary = f"{self.file}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.dirname(self.file))
            data = marshal.dumps(self.entries)
            with open(temporary, "xb") as stream:
                stream.write(data)
            os.replace(temporary, self.file)
        except (OSError, ValueError):  # a read-only package folder, or a value marshal refuses: only not faster
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return False
        self.added = 0
        return True


def install(*, patterns: bool) -> None:
    """Both caches, before any of premigrate's dataclasses is defined and before a driver is imported; the pattern
    cache (only for the `premigrate` command: `patterns`, see regex_cache.py) first, before pathlib and the
    urllib.parse it imports."""
    if patterns:
        from premigrate import regex_cache

        regex_cache.install()
    from premigrate.stand_ins import import_without

    # pathlib imports urllib.parse, which imports ipaddress for one check of a bracketed (IPv6) host: stood in until a
    # URL has one (premigrate/stand_ins.py), it costs a no-op run nothing.
    import_without("urllib.parse", "ipaddress")
    # pathlib imports ntpath for its Windows paths (whose import probes for five Windows-only modules along the
    # whole sys.path) and fnmatch for glob() and match(): a no-op run uses neither; `new` and the scratch
    # database's clean-up glob, and load fnmatch then.
    import_without("pathlib", "ntpath", "fnmatch")
    from premigrate import dataclass_cache

    dataclass_cache.install()


def save() -> None:
    """At the end of a run: what it compiled, where Python would write bytecode."""
    from premigrate import dataclass_cache, regex_cache

    for cache in (dataclass_cache.installed(), regex_cache.installed()):
        if cache is not None:
            cache.save()


def fill() -> int:
    """Import every premigrate module (both drivers' with them) and compile every pattern they hold for later, then
    write both files with what that asked for; how many entries they hold. For a fresh interpreter: what it
    imported before is missed."""
    import importlib
    import pkgutil

    import premigrate
    from premigrate import dataclass_cache, regex_cache
    from premigrate.lazy_re import LazyPattern

    install(patterns=False)
    classes, patterns = dataclass_cache.installed(), regex_cache.install(recording=True)
    assert classes is not None and patterns is not None
    for module in pkgutil.walk_packages(premigrate.__path__, "premigrate."):
        if module.name.endswith(("__main__", "._otel")):  # runs the CLI / needs the optional OpenTelemetry extra
            continue
        loaded = importlib.import_module(module.name)
        for value in list(vars(loaded).values()):
            # A module's patterns, alone or in its tables of patterns (model/migrations.py PATTERNS, ...).
            inner = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
            for item in [value, *inner, *(x for v in inner if isinstance(v, tuple) for x in v)]:
                if isinstance(item, LazyPattern):
                    item.compiled()
    # What a run compiles on first use rather than at import: urllib's unquote, on the first URL read.
    from premigrate.model.dsn import parse_url

    for url in ("postgresql://u:p%40@h/d", "mysql://u@h/d", "sqlite:///d.db"):
        parse_url(url)
    total = 0
    for cache in (classes, patterns):
        cache.keep_only_used()
        cache.save(force=True)
        total += len(cache.entries)
    return total
