"""premigrate/regex_cache.py: compiled patterns kept like bytecode (premigrate/kept.py).

What must hold: a pattern built from the file is the pattern re builds (flags, code, groups and their names, and so
every match); a kept pattern is not compiled again; nothing is kept that does not rebuild exactly, nor a pattern
compiled with re.DEBUG; a file of another engine version or with a bad entry costs speed, never a run. And on a real
no-op `up`, a warm cache compiles nothing.
"""

from __future__ import annotations

import marshal
import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.warm_runs import apply_then_no_op
from premigrate import regex_cache
from premigrate.regex_cache import RegexCache

# Shapes re compiles differently: named groups, a case-insensitive part, verbose mode, bytes, lookarounds, unicode.
_PATTERNS: list[tuple[Any, int, Any]] = [
    (r"V(?P<version>\d+(?:[._]\d+)*)__(?P<description>.+)\.(?i:sql)\Z", re.S, "V1_2__add users.SQL"),
    (r"^[ \t]*--[ \t]*migrate:(?P<part>up|down)\b(?P<options>[^\n]*)$", re.M, "x\n-- migrate:down tx=false\n"),
    (r"""(?x) (?P<word> [a-z]+ ) \s* = \s* (?P<value> \d+ )  # a comment""", 0, "size = 42"),
    (rb"\s*((?:INSERT|REPLACE)\b.+\bVALUES?\s*)(\(\s*(?:%s|%\(.+\)s)\s*(?:,\s*(?:%s|%\(.+\)s)\s*)*\))", re.I | re.S,
     b"insert into t values (%s, %s)"),
    (r"(?<!\\)\$\{(?P<name>[^}]+)\}(?=;|$)", 0, "SET x = ${role};"),
    (r"[ÄÖÜ]+ß", re.I, "äöüß"),
]


def _compile_through(cache: RegexCache, pattern: Any, flags: int) -> Any:
    return cache.compile(pattern, flags)


@pytest.mark.parametrize(("pattern", "flags", "text"), [pytest.param(*p, id=str(i)) for i, p in enumerate(_PATTERNS)])
def test_a_kept_pattern_is_the_pattern_re_builds(pattern: Any, flags: int, text: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = RegexCache(tmp_path / "r")
    compiled = _compile_through(first, pattern, flags)
    assert 1 == first.added and compiled == re.compile(pattern, flags)
    assert first.save(force=True)

    def never(*args: object) -> object:
        raise AssertionError("compiled again")

    monkeypatch.setattr(regex_cache, "_original_compile", never)
    second = RegexCache(tmp_path / "r")
    rebuilt = _compile_through(second, pattern, flags)
    expected = re.compile(pattern, flags)
    assert (1, 0) == (second.reused, second.added)
    assert (rebuilt, rebuilt.flags, rebuilt.groups, rebuilt.groupindex) == \
           (expected, expected.flags, expected.groups, expected.groupindex)
    got, want = rebuilt.search(text), expected.search(text)
    assert want is not None and (got.span(), got.groups()) == (want.span(), want.groups())  # type: ignore[union-attr]


def test_debug_patterns_are_never_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = RegexCache(tmp_path / "r")
    cache.compile("a+b", re.DEBUG)
    assert (0, {}) == (cache.added, cache.entries) and capsys.readouterr().out  # re.DEBUG printed, as always


def test_a_pattern_that_does_not_rebuild_exactly_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Python's re internals: what this module would keep rebuilds a different pattern, so nothing is kept."""
    real = regex_cache._engine_arguments

    def other_code(pattern: Any, flags: int) -> Any:
        arguments = real(pattern, flags)
        return None if arguments is None else (arguments[0] | re.I, *arguments[1:])

    monkeypatch.setattr(regex_cache, "_engine_arguments", other_code)
    cache = RegexCache(tmp_path / "r")
    assert cache.compile("abc", 0).match("abc") and cache.entries == {}


def test_another_engine_versions_file_is_ignored(tmp_path: Path) -> None:
    cache = RegexCache(tmp_path / "r")
    cache.compile("abc", 0)
    assert cache.save(force=True)
    stored = marshal.loads((tmp_path / "r").read_bytes())
    stored[("magic",)] = marshal.dumps(-1)
    (tmp_path / "r").write_bytes(marshal.dumps(stored))
    assert RegexCache(tmp_path / "r").entries == {}


@pytest.mark.parametrize("entry", [
    pytest.param(marshal.dumps("not a tuple"), id="shape"),
    pytest.param(marshal.dumps((0, [999999, 1, 2], 0, {}, ())), id="wrong-length"),
    pytest.param(marshal.dumps((32, [999999, 1, 2], 0, {}, (None,))), id="code-the-engine-refuses"),
    pytest.param(b"\xe9\x00garbage", id="unreadable"),
])
def test_a_bad_entry_is_compiled_again(entry: bytes, tmp_path: Path) -> None:
    cache = RegexCache(tmp_path / "r")
    cache.entries[(False, "a(b)c", 0)] = entry
    compiled = cache.compile("a(b)c", 0)
    assert compiled == re.compile("a(b)c") and compiled.match("abc").group(1) == "b"  # type: ignore[union-attr]
    assert (0, 1) == (cache.reused, cache.added)


def test_a_warm_cache_compiles_nothing_on_a_no_op_up(tmp_path: Path) -> None:
    """Two real runs in fresh interpreters: the first (which applies) compiles the patterns of what it imports after
    the cache is in place, the second (a no-op, on the same folder and database) compiles none."""
    first, second = apply_then_no_op("premigrate.regex_cache", tmp_path)
    assert (first["code"], second["code"]) == (0, 0)
    assert first["added"] >= 5
    assert second["added"] == 0 and second["reused"] >= 5  # fewer than the first: a no-op runs less
