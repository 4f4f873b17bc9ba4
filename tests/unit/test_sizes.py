"""Size limits over src/: no module over 450 lines, no class over 300, no function over 80 (CONTRIBUTING.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "premigrate"
MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 450, 300, 80


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _span(node: ast.AST) -> int:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]
    return int(node.end_lineno) - start + 1  # type: ignore[attr-defined]


def oversized(path: Path, root: Path = SRC.parent) -> list[str]:
    """Every limit the module at `path` breaks, one line each, the module named relative to `root`."""
    text = path.read_text(encoding="utf-8")
    name = str(path.relative_to(root))
    found = []
    lines = len(text.splitlines())
    if lines > MODULE_LINES:
        found.append(f"{name}: {lines} lines (limit {MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and _span(node) > CLASS_LINES:
            found.append(f"{name}: class {node.name} {_span(node)} lines (limit {CLASS_LINES})")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _span(node) > FUNCTION_LINES:
            found.append(f"{name}: function {node.name} {_span(node)} lines (limit {FUNCTION_LINES})")
    return found


class TestSizeLimits:
    def test_the_checker_sees_an_oversized_function(self, tmp_path: Path) -> None:
        """A function one line over the limit is reported."""
        body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES))
        path = tmp_path / "probe.py"
        path.write_text(f"def f() -> None:\n{body}", encoding="utf-8")
        assert [f"probe.py: function f {FUNCTION_LINES + 1} lines (limit 80)"] == oversized(path, tmp_path)

    def test_no_module_class_or_function_over_its_limit(self) -> None:
        """Every module, class and function in src/ stays within its limit."""
        assert [] == [problem for path in _modules() for problem in oversized(path)]
