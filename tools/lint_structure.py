"""Structure rules that ruff and import-linter cannot express (run by ``nox -s lint``):

- every module of the package stays under 400 lines;
- the pure layers (``model``, ``gocdnext``) open no file and read no clock: no ``open(...)``,
  no ``datetime.now()`` / ``utcnow()`` / ``today()``, no ``time.time()`` and friends
  (``now`` is always an argument).

Exits 1 and lists every breach."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "gocdbackup"
MAX_LINES = 400
PURE = ("model", "gocdnext")
CLOCK_CALLS = frozenset({"now", "utcnow", "today", "time", "monotonic", "perf_counter"})


def _calls(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            found.append((node.lineno, "open()"))
        elif isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
            owner = func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if name in {"datetime", "date", "time"}:
                found.append((node.lineno, f"{name}.{func.attr}()"))
        elif isinstance(func, ast.Attribute) and func.attr == "open":
            found.append((node.lineno, ".open()"))
    return found


def main() -> int:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines >= MAX_LINES:
            problems.append(f"{rel}: {lines} lines (the limit is {MAX_LINES}): split it by concern")
        if path.relative_to(PACKAGE).parts[0] in PURE:
            for lineno, what in _calls(ast.parse(text)):
                problems.append(f"{rel}:{lineno}: {what} in a pure layer (no I/O, no clock)")
    for p in problems:
        print(p)  # noqa: T201 - a lint tool reports on stdout
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
