"""Two real `up` runs of a script in fresh interpreters, on one folder and one SQLite database: the first applies,
the second is a no-op (the kept caches' tests: premigrate/kept.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


_RUN = """
import contextlib, importlib, io, json, sys
cache = importlib.import_module(sys.argv[4]).install(sys.argv[1], **json.loads(sys.argv[5]))
from premigrate.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(["up", "--dir", sys.argv[2]], {"DATABASE_URL": "sqlite:///" + sys.argv[3]})
added = cache.added
cache.save(force=True)
print(json.dumps({"code": code, "added": added, "reused": cache.reused}))
"""


def apply_then_no_op(cache_module: str, tmp_path: Path, first: dict[str, Any] | None = None,
                     second: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each run's exit code, and what the cache of `cache_module` (installed at a path of its own, with the keyword
    arguments `first` and `second` to install()) added to its file and reused from it."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_a.sql").write_text("CREATE TABLE a (id INTEGER);\n")
    runs = []
    for install in (first or {}, second or {}):
        out = subprocess.run([sys.executable, "-c", _RUN, str(tmp_path / "cache"), str(folder),
                              str(tmp_path / "db.sqlite"), cache_module, json.dumps(install)], capture_output=True,
                             text=True, check=True).stdout
        runs.append(json.loads(out))
    return runs[0], runs[1]
