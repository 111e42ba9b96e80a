"""The product's shape as STYLE.md describes it: a drawn public surface, and functions that fit in one reading."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = sorted(
    {*ROOT.glob("*.py"), *ROOT.glob("alerts/*.py"), *ROOT.glob("providers/*.py"), *ROOT.glob("config/*.py")}
    - {ROOT / "conftest.py", ROOT / "alerts" / "__init__.py"}
)
MAX_LINES = 40
"""Lines of code in one function, its docstring not counted; longer needs "Long because" in the docstring."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    return (node.end_lineno or node.lineno) - body[0].lineno + 1


def test_every_product_module_draws_its_public_surface() -> None:
    """Each product module lists its public names in `__all__`, and every listed name exists."""
    missing, dangling = [], []
    for path in PRODUCT:
        module = importlib.import_module(_module_name(path))
        names = getattr(module, "__all__", None)
        if names is None:
            missing.append(str(path.relative_to(ROOT)))
            continue
        dangling += [f"{path.relative_to(ROOT)}: {n}" for n in names if not hasattr(module, n)]
    assert missing == [] and dangling == []


def test_no_product_function_is_longer_than_a_reading_without_a_reason() -> None:
    """No product function runs over MAX_LINES lines of code unless its docstring says why."""
    long = []
    for path in PRODUCT:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _code_lines(node) <= MAX_LINES:
                continue
            if "Long because" not in (ast.get_docstring(node) or ""):
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({_code_lines(node)} lines)")
    assert long == []


def test_the_length_measure_counts_code_not_the_docstring() -> None:
    """A function of a long docstring and two statements is two lines of code (the test can fail)."""
    tree = ast.parse('def f():\n    """Doc.\n\n    More.\n    """\n    a = 1\n    return a\n')
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef) and _code_lines(fn) == 2
