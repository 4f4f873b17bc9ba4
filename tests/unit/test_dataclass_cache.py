"""premigrate/dataclass_cache.py: the generated methods of dataclasses, compiled once and kept like bytecode.

What must hold: a class built from the cache is the class dataclasses builds (methods, annotations, frozenness);
a cached source is not compiled again; the file is written only where Python would write bytecode, atomically,
and a bad or unwritable file costs speed, never a run. And on a real no-op `up`, a warm cache compiles nothing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.warm_runs import apply_then_no_op
from premigrate.dataclass_cache import DataclassCache


def _define(cache: DataclassCache, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A frozen dataclass (every generated method) built through `cache`."""
    with monkeypatch.context() as patch:
        patch.setattr(dataclasses, "exec", cache.exec, raising=False)
        return dataclasses.make_dataclass("Point", [("x", int), ("y", "str", dataclasses.field(default="a"))],
                                          frozen=True)


def test_a_second_process_reuses_what_the_first_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dataclasses.marshal"
    first = DataclassCache(path)
    _define(first, monkeypatch)
    compiled = first.compiled
    # One source per generated method up to Python 3.12 (__init__, __repr__, __eq__, ...), one per class after.
    assert compiled >= 1 and first.reused == 0
    assert first.save(force=True) and path.exists()

    second = DataclassCache(path)
    point = _define(second, monkeypatch)
    assert (0, compiled) == (second.compiled, second.reused)
    assert second.save() is False  # nothing new: the file is left alone

    # The class behaves as dataclasses built it: init with its default, repr, eq and hash, frozen.
    p = point(1)
    assert (p.x, p.y, repr(p), p == point(1, "a"), hash(p) == hash(point(1, "a"))) == \
           (1, "a", "Point(x=1, y='a')", True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2


def test_annotations_are_the_objects_not_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's own module has `from __future__ import annotations`; the methods it compiles must not inherit
    it (dataclasses' exec() inherits nothing), or every __init__ annotation becomes a string."""
    cache = DataclassCache(tmp_path / "c")
    point = _define(cache, monkeypatch)
    assert point.__init__.__annotations__["x"] is int
    assert point.__init__.__annotations__ == dataclasses.make_dataclass(
        "Point", [("x", int), ("y", "str", dataclasses.field(default="a"))], frozen=True).__init__.__annotations__


@pytest.mark.parametrize("content", [b"", b"not marshal at all", b"\xe9\x00garbage", None])
def test_a_bad_file_is_ignored(content: bytes | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    path = tmp_path / "c"
    # None: a well-formed file of the wrong shape (values that are not marshalled code).
    path.write_bytes(content if content is not None else marshal.dumps({"def f(): pass": 42, 3: b"x"}))
    cache = DataclassCache(path)
    assert cache.entries == {}
    assert _define(cache, monkeypatch)(3).x == 3 and cache.compiled >= 1


def test_a_stale_entry_that_is_not_code_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    warm = DataclassCache(tmp_path / "c")
    _define(warm, monkeypatch)
    compiled = warm.compiled
    warm.entries = {source: marshal.dumps("not code") for source in warm.entries}
    warm.save(force=True)
    cache = DataclassCache(tmp_path / "c")
    assert _define(cache, monkeypatch)(4).x == 4
    assert (cache.reused, cache.compiled) == (0, compiled)


def test_nothing_is_written_where_python_writes_no_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c"
    cache = DataclassCache(path)
    _define(cache, monkeypatch)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert cache.save() is False and not path.exists()
    assert cache.save(force=True) and path.exists()  # the image's and bench's explicit fill


def test_an_unwritable_path_costs_speed_not_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path under a regular file: no folder can be made there, whoever runs the test."""
    (tmp_path / "file").write_text("")
    cache = DataclassCache(tmp_path / "file" / "__pycache__" / "c")
    _define(cache, monkeypatch)
    assert cache.save(force=True) is False


def test_a_warm_cache_compiles_nothing_on_a_no_op_up(tmp_path: Path) -> None:
    """Two real runs in fresh interpreters: the first compiles the methods of every dataclass it loads, the second
    (a no-op, on the same folder and database) compiles none and reuses them all."""
    first, second = apply_then_no_op("premigrate.dataclass_cache", tmp_path)
    assert (first["code"], second["code"]) == (0, 0)
    assert first["added"] >= 40  # every dataclass the CLI and the up path define (one source each at least)
    assert second["added"] == 0 and second["reused"] >= 40
