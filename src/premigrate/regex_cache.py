"""Compiled regular expressions, kept between runs (kept.py): what re.compile() builds in Python, built once.

re.compile() parses a pattern and generates its matcher's code in pure Python (re._parser, re._compiler), then
hands that code to the C engine (_sre.compile). The modules a no-op `up` imports compile some 25 patterns that way
at import (PyMySQL's and psycopg's, json's, premigrate's own), about 3 ms of every start on the machines bench/
measures. The file holds, per (pattern, flags), the arguments the C engine was given; a pattern found there goes
straight to _sre.compile.

Only `fill()` (kept.py: the image's build, bench/run) writes the file, in a process that holds no secret and compiles
only what premigrate's modules hold. A run only reads it: the patterns a run builds from its own data (the log's
scrubber is made of the database password and every token, a Liquibase changelog gives one per changeset) are
neither kept nor written. And the file is read only by the `premigrate` command (collector.started_as_command): a
program that imports premigrate keeps re as it is.

Why a kept pattern is re's: an entry is made only from a pattern that re just compiled without a warning, and only
when the pattern rebuilt from it is equal to it (same flags, code, groups and group names); on a Python whose re
works otherwise, no entry is ever made. The file is named with the interpreter's cache tag and holds the full
interpreter version and the engine's (_sre.MAGIC): a bugfix release may change the code re generates (3.11.5 did),
and then the file is ignored. A pattern compiled with re.DEBUG (which prints) is never kept.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from typing import Any

from premigrate.kept import KeptFile, default_path

_re_compiler: Any = getattr(re, "_compiler", None)
_re_parser: Any = getattr(re, "_parser", None)
try:
    import _sre  # type: ignore[import-not-found]

    _MAGIC: int | None = _sre.MAGIC
except (ImportError, AttributeError):  # another implementation: nothing is kept
    _MAGIC = None


class RegexCache(KeptFile):
    """The patterns kept, by (is bytes, pattern, flags): the engine's arguments for each. `recording` (fill()
    only): what misses is compiled into an entry; otherwise a miss is compiled by re alone and nothing is added."""

    def __init__(self, path: str | os.PathLike[str], *, recording: bool = False) -> None:
        super().__init__(path, tuple)
        self.recording = recording
        self.reused = 0
        self.missed = 0  # patterns re compiled itself (none when the file held every one a run asks for)
        if self.entries.pop(("magic",), None) != _magic_entry():
            self.entries = {}  # written by another interpreter or engine version: its code may not be this one's

    def compile(self, pattern: Any, flags: int = 0) -> Any:
        """re._compiler.compile() as re calls it, with the pattern looked up first."""
        if type(pattern) not in (str, bytes) or flags & re.DEBUG:  # a str subclass would not marshal
            return _original_compile(pattern, flags)
        key = (type(pattern) is bytes, pattern, int(flags))
        if key in self.entries:  # a miss adds nothing to `used` either: a run's own patterns leave no trace
            kept = self.get(key)
            if isinstance(kept, tuple) and len(kept) == 5:
                try:
                    compiled = _sre.compile(pattern, *kept)
                except (TypeError, ValueError, RuntimeError, OverflowError):  # not this engine's code after all
                    pass
                else:
                    self.reused += 1
                    return compiled
        self.missed += 1
        compiled = _original_compile(pattern, flags)
        if self.recording:
            arguments = _engine_arguments(pattern, int(flags))
            if arguments is not None and _rebuilds(pattern, arguments, compiled):
                self.put(key, arguments)
        return compiled

    def save(self, *, force: bool = False) -> bool:
        if not self.recording:
            return False  # a run's own patterns may hold its secrets: only fill() writes
        self.entries[("magic",)] = _magic_entry()
        try:
            return super().save(force=force)
        finally:
            self.entries.pop(("magic",), None)


def _magic_entry() -> bytes:
    import marshal

    return marshal.dumps((_MAGIC, sys.version))


def _engine_arguments(pattern: str | bytes, flags: int) -> tuple[Any, ...] | None:
    """What re._compiler.compile() hands the engine for this pattern (its steps, as Python 3.11 to 3.13 take them),
    as plain values marshal can keep; None when this Python's re does not work that way."""
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            parsed = _re_parser.parse(pattern, flags)
        if warned:  # a hit would skip the warning re gives for it
            return None
        code = [int(op) for op in _re_compiler._code(parsed, flags)]
        groupindex = {str(name): int(index) for name, index in parsed.state.groupdict.items()}
        indexgroup: list[str | None] = [None] * parsed.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        return int(flags | parsed.state.flags), code, int(parsed.state.groups - 1), groupindex, tuple(indexgroup)
    except Exception:  # noqa: BLE001 - another Python's internals: the pattern is simply not kept
        return None


def _rebuilds(pattern: str | bytes, arguments: tuple[Any, ...], compiled: Any) -> bool:
    """Whether the engine, given `arguments`, builds exactly the pattern re compiled."""
    try:
        rebuilt = _sre.compile(pattern, *arguments)
    except Exception:  # noqa: BLE001 - as above
        return False
    return bool(rebuilt == compiled and rebuilt.groups == compiled.groups
                and rebuilt.groupindex == compiled.groupindex)


_original_compile: Any = getattr(_re_compiler, "compile", None)
_installed: RegexCache | None = None


def install(path: str | os.PathLike[str] | None = None, *, recording: bool = False) -> RegexCache | None:
    """Route re's compilation through the cache at `path` (default: premigrate's __pycache__); `recording`: add
    what misses (fill()). Idempotent; None where this Python's re has no such step."""
    global _installed
    if _MAGIC is None or _original_compile is None or _re_parser is None:
        return None
    if _installed is None or (path is not None and os.fspath(path) != _installed.file) or \
            recording != _installed.recording:
        _installed = RegexCache(path or default_path("regex"), recording=recording)
        _re_compiler.compile = _installed.compile
    return _installed


def installed() -> RegexCache | None:
    return _installed
