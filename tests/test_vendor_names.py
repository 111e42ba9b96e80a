"""Vendor facts live in `providers/<name>.py`: no other deployed module names a vendor.

The model is pydantic-ai's provider-names test. Identifiers, attribute names, imports, keyword
arguments and string constants (docstrings included) are scanned; comments are not in the AST.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import providers

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = sorted({*ROOT.glob("*.py"), *ROOT.glob("alerts/*.py"), *ROOT.glob("config/*.py")} - {ROOT / "conftest.py"})


def _vendor_words() -> set[str]:
    """Each built-in provider's name and the words of its title ("gemini", "vertex", ...)."""
    words: set[str] = set()
    for s in providers.builtin():
        words |= {s.name.lower(), *(w.lower() for w in re.findall(r"[A-Za-z]{3,}", s.title))}
    return words - {"and", "the"}


def _texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            yield n.lineno, n.id
        elif isinstance(n, ast.Attribute):
            yield n.lineno, n.attr
        elif isinstance(n, ast.alias):
            yield getattr(n, "lineno", 0), f"{n.name} {n.asname or ''}"
        elif isinstance(n, ast.ImportFrom):
            yield n.lineno, n.module or ""
        elif isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            yield n.lineno, n.name
        elif isinstance(n, ast.arg | ast.keyword) and n.arg:
            yield n.lineno, n.arg
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.lineno, n.value


def _hits(text: str, words: set[str]) -> set[str]:
    """The vendor words in `text`, as tokens (CamelCase, snake_case and punctuation split); a word of
    five letters or more also as a substring ("OPENAI_BASE_URL", "anthropics")."""
    words_as_written = re.findall(r"[A-Za-z0-9]+", text)  # "xAI"
    camel_parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", text)  # "XAIAccount" -> XAI, Account
    tokens = {t.lower() for t in (*words_as_written, *camel_parts)}
    lowered = text.lower()
    return {w for w in words if w in tokens or (len(w) >= 5 and w in lowered)}


def test_the_scan_finds_a_vendor_name_where_there_is_one() -> None:
    """The matcher is not vacuous: env names, class names, titles and scope examples are caught."""
    words = _vendor_words()
    assert {"openai", "anthropic", "xai", "gemini", "vertex"} <= words
    for text in ("OPENAI_BASE_URL", "XAIAccount", "the xAI limit", "Gemini / Vertex AI", "`openai/prod`"):
        assert _hits(text, words), text
    assert not _hits("maximum relaxation of the axis", words)  # "xai" only as a whole token
    assert len(PRODUCT) >= 8 and ROOT / "check.py" in PRODUCT


def test_no_product_module_outside_providers_names_a_vendor() -> None:
    """Vendor facts live in providers/<name>.py: no other deployed module names a vendor."""
    words = _vendor_words()
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {sorted(h)} in {text[:60]!r}"
        for p in PRODUCT
        for line, text in _texts(ast.parse(p.read_text(encoding="utf-8")))
        if (h := _hits(text, words))
    ]
    assert bad == []
