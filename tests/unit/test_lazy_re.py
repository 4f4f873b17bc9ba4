"""premigrate/lazy_re.py: a pattern compiled on first use behaves as re.compile's, and a no-op run compiles none."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from premigrate.lazy_re import LazyPattern

_PATTERN, _FLAGS = r"(?P<word>[a-z]+)(\d)?", re.IGNORECASE
_TEXT = "ab1 CD ef2 --"


@pytest.mark.parametrize(("method", "args"), [
    pytest.param("search", (_TEXT, 2, 9), id="search"),
    pytest.param("match", (_TEXT, 4), id="match"),
    pytest.param("fullmatch", ("ab1",), id="fullmatch"),
    pytest.param("findall", (_TEXT,), id="findall"),
    pytest.param("finditer", (_TEXT, 1, 8), id="finditer"),
    pytest.param("sub", (lambda m: m["word"].upper(), _TEXT, 2), id="sub"),
    pytest.param("subn", ("<\\g<word>>", _TEXT), id="subn"),
    pytest.param("split", (_TEXT, 1), id="split"),
])
@pytest.mark.parametrize("first_use", [True, False], ids=["first-use", "compiled"])
def test_same_answers_as_the_compiled_pattern(method: str, args: tuple[object, ...], first_use: bool) -> None:
    """Each method answers as re.compile(...)'s does, on the call that compiles it and on later ones."""
    lazy, compiled = LazyPattern(_PATTERN, _FLAGS), re.compile(_PATTERN, _FLAGS)
    if not first_use:
        lazy.search("")

    def plain(result: object) -> object:
        if isinstance(result, re.Match):
            return result.span(), result.groups()
        return [plain(r) for r in result] if not isinstance(result, (str, tuple)) else result

    assert plain(getattr(compiled, method)(*args)) == plain(getattr(lazy, method)(*args))


def test_compiled_on_first_use_into_the_patterns_own_methods() -> None:
    """Nothing is compiled until a method is called; from then on every method is the compiled pattern's own (no
    wrapper in the way of a hot loop)."""
    lazy = LazyPattern(_PATTERN, _FLAGS)
    assert "search" not in vars(lazy) and _PATTERN == lazy.pattern
    lazy.fullmatch("x")
    compiled = lazy.compiled()
    assert compiled is re.compile(_PATTERN, _FLAGS) and compiled.flags == lazy.flags
    for method in ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split"):
        assert getattr(lazy, method) == getattr(compiled, method), method


# The `up` path of tests/unit/test_imports.py, then what of premigrate's lazily compiled patterns it compiled.
_UP_PATH = """
import json, sys
from premigrate import cli, log
from premigrate.drivers import driver_class
from premigrate.lazy_re import LazyPattern
import premigrate.commands.up
cli.parse_args(["up"])
log.configure(log_format="json", level="info", secrets=["s3cret"])
log.get_logger().info("probe", note="s3cret")
driver_class("mysql")
lazy = {f"{m}.{n}": "compiled" in vars(v) for m, module in list(sys.modules.items()) if m.startswith("premigrate")
        for n, v in vars(module).items() if isinstance(v, LazyPattern)}
print(json.dumps(lazy))
"""


def test_the_up_path_compiles_none_of_them() -> None:
    """The modules a no-op `up` imports hold their rarely used patterns uncompiled (credentials in SQL, statement
    splitting, trace masking): the path, one log line included, compiles none of them."""
    result = subprocess.run([sys.executable, "-c", _UP_PATH], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    lazy = json.loads(result.stdout)
    assert {"premigrate.model.sql_secrets._BY_GRAMMAR", "premigrate.model.sql._WORD"} <= set(lazy)
    assert [] == sorted(name for name, compiled in lazy.items() if compiled)
