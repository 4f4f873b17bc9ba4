"""premigrate/regex_cache.py: compiled patterns kept like bytecode (premigrate/kept.py).

What must hold: a pattern built from the file is the pattern re builds (flags, code, groups and their names, and so
every match); a kept pattern is not compiled again; nothing is kept that does not rebuild exactly, nor a pattern
compiled with re.DEBUG or with a warning; a file of another interpreter or engine version or with a bad entry costs
speed, never a run. Only fill() records and writes: a run's own patterns (its secrets among them) are never kept,
and only the `premigrate` command reads the file. On a real no-op `up`, a filled cache compiles nothing.
"""

from __future__ import annotations

import marshal
import os
import re
import subprocess
import sys
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
    first = RegexCache(tmp_path / "r", recording=True)
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
    cache = RegexCache(tmp_path / "r", recording=True)
    cache.compile("a+b", re.DEBUG)
    assert (0, {}) == (cache.added, cache.entries) and capsys.readouterr().out  # re.DEBUG printed, as always


def test_a_pattern_that_does_not_rebuild_exactly_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another Python's re internals: what this module would keep rebuilds a different pattern, so nothing is kept."""
    real = regex_cache._engine_arguments

    def other_code(pattern: Any, flags: int) -> Any:
        arguments = real(pattern, flags)
        return None if arguments is None else (arguments[0] | re.I, *arguments[1:])

    monkeypatch.setattr(regex_cache, "_engine_arguments", other_code)
    cache = RegexCache(tmp_path / "r", recording=True)
    assert cache.compile("abc", 0).match("abc") and cache.entries == {}


@pytest.mark.parametrize("magic", [pytest.param(lambda m, v: (-1, v), id="engine"),
                                   pytest.param(lambda m, v: (m, v.replace("3.", "3.99.", 1)), id="interpreter")])
def test_another_versions_file_is_ignored(magic: Any, tmp_path: Path) -> None:
    """The engine's MAGIC stays the same through 3.11.x while re's code generation changed (3.11.5): the file holds
    the full interpreter version too."""
    cache = RegexCache(tmp_path / "r", recording=True)
    cache.compile("abc", 0)
    assert cache.save(force=True)
    assert 1 == len(RegexCache(tmp_path / "r").entries)
    stored = marshal.loads((tmp_path / "r").read_bytes())
    stored[("magic",)] = marshal.dumps(magic(regex_cache._MAGIC, sys.version))
    (tmp_path / "r").write_bytes(marshal.dumps(stored))
    assert RegexCache(tmp_path / "r").entries == {}


def test_a_pattern_that_warns_is_not_kept(tmp_path: Path) -> None:
    """A hit would skip the warning re gives for the pattern."""
    cache = RegexCache(tmp_path / "r", recording=True)
    with pytest.warns(FutureWarning):
        cache.compile("[[a]", 0)  # "Possible nested set"
    assert cache.entries == {}


def test_a_str_subclass_is_compiled_by_re_alone(tmp_path: Path) -> None:
    class Text(str):
        pass

    cache = RegexCache(tmp_path / "r", recording=True)
    assert cache.compile(Text("a+"), 0).match("aa") and cache.entries == {}
    assert cache.save(force=True)  # nothing marshal refuses in the file


class TestARunKeepsNothing:
    """Patterns a run builds from its own data (the log scrubber is made of the password) are never kept."""

    def test_a_reading_cache_adds_no_entry_and_writes_no_file(self, tmp_path: Path) -> None:
        warm = RegexCache(tmp_path / "r", recording=True)
        warm.compile("abc", 0)
        warm.save(force=True)
        before = (tmp_path / "r").read_bytes()
        cache = RegexCache(tmp_path / "r")
        secret = re.escape("Hunter2-Sup3rSecret")
        assert cache.compile(secret, 0).search("x Hunter2-Sup3rSecret") and cache.compile("abc", 0).match("abc")
        assert (1, 1, 0, {(False, "abc", 0)}) == (cache.reused, cache.missed, cache.added, cache.used)
        assert cache.save(force=True) is False and before == (tmp_path / "r").read_bytes()

    def test_the_command_run_leaves_the_password_nowhere_on_disk(self, tmp_path: Path) -> None:
        """A real `premigrate` command (a script of that name, so the pattern cache is on) whose log scrubber holds a
        password: the package's cache files hold no trace of it afterwards."""
        import premigrate

        files = list((Path(premigrate.__file__).parent / "__pycache__").glob("*.marshal"))
        before = {f: f.read_bytes() for f in files}
        script = tmp_path / "premigrate"
        script.write_text("import sys\nfrom premigrate import regex_cache\nfrom premigrate.cli import main\n"
                          "print('installed', regex_cache.installed() is not None, flush=True)\n"
                          "main(['status', '--wait-timeout', '0'])\nfrom premigrate import kept\nkept.save()\n")
        # Where Python writes bytecode (so a run would write its caches), against a server that is not there.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("PG")}
        env["DATABASE_URL"] = "postgresql://app:Hunter2-Sup3rSecret@127.0.0.1:1/app"
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env,
                                cwd=tmp_path)
        assert "installed True" in result.stdout, result.stderr
        assert "Hunter2" not in result.stderr  # the scrubber ran: the password was masked in the log
        after = list((Path(premigrate.__file__).parent / "__pycache__").glob("*.marshal"))
        assert all(b"Hunter2" not in f.read_bytes() for f in after)
        assert {f: f.read_bytes() for f in files if f.name.startswith("regex.")} == \
               {f: b for f, b in before.items() if f.name.startswith("regex.")}


def test_a_program_importing_premigrate_keeps_re_as_it_is() -> None:
    code = "import re, premigrate; from premigrate import regex_cache; " \
           "print(regex_cache.installed() is None, re._compiler.compile.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "True re._compiler" == result.stdout.strip(), result.stderr


@pytest.mark.parametrize("entry", [
    pytest.param(marshal.dumps("not a tuple"), id="shape"),
    pytest.param(marshal.dumps((0, [999999, 1, 2], 0, {}, ())), id="wrong-length"),
    pytest.param(marshal.dumps((32, [999999, 1, 2], 0, {}, (None,))), id="code-the-engine-refuses"),
    pytest.param(b"\xe9\x00garbage", id="unreadable"),
])
def test_a_bad_entry_is_compiled_again(entry: bytes, tmp_path: Path) -> None:
    cache = RegexCache(tmp_path / "r", recording=True)
    cache.entries[(False, "a(b)c", 0)] = entry
    compiled = cache.compile("a(b)c", 0)
    assert compiled == re.compile("a(b)c") and compiled.match("abc").group(1) == "b"  # type: ignore[union-attr]
    assert (0, 1) == (cache.reused, cache.added)


def test_a_warm_cache_compiles_nothing_on_a_no_op_up(tmp_path: Path) -> None:
    """Two real runs in fresh interpreters: the first (which applies) records the patterns of what it imports after
    the cache is in place, as fill() does; the second (a no-op, on the same folder and database), reading only,
    finds every one it compiles."""
    first, second = apply_then_no_op("premigrate.regex_cache", tmp_path, first={"recording": True})
    assert (first["code"], second["code"]) == (0, 0)
    assert first["added"] >= 5
    assert second["added"] == 0 and second["reused"] >= 5  # fewer than the first: a no-op runs less
