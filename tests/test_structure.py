"""The project's import graph: no circle, and the library (repro/) never imports an experiment.

The runner finds experiments by name (pkgutil over the ``experiments`` package, then importlib),
so the package itself is the one thing from experiments/ that repro/ may name."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("repro", "experiments")


def imports_of(path: Path) -> set[str]:
    """The project modules a file imports, wherever in it the import stands (lazy ones too)."""
    package = path.parent.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = f"{package}.{node.module}" if node.level and node.module else package if node.level else node.module
            if base.split(".")[0] not in PACKAGES:
                continue
            found.add(".".join(base.split(".")[:2]))
            if "." not in base:  # `from repro import figures`: the names are modules
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(".".join(a.name.split(".")[:2]) for a in node.names if a.name.split(".")[0] in PACKAGES)
    return found


def graph() -> dict[str, set[str]]:
    modules = {f"{p.parent.name}.{p.stem}": p for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py")}
    return {name: {d for d in imports_of(path) if d in modules and d != name} for name, path in modules.items()}


def test_no_import_circle():
    edges, circles = graph(), []

    def visit(node, path):
        for dep in sorted(edges[node]):
            if dep in path:
                circles.append(path[path.index(dep):] + [dep])
            elif dep > path[0]:  # each circle once, from its smallest module
                visit(dep, path + [dep])
    for start in sorted(edges):
        visit(start, [start])
    assert not circles, circles


def test_the_library_imports_no_experiment():
    wrong = {(m, d) for m, deps in graph().items() if m.startswith("repro.") for d in deps if d.startswith("experiments")}
    assert not wrong, wrong
    runner = imports_of(ROOT / "repro" / "runner.py")
    assert {d for d in runner if d.startswith("experiments")} <= {"experiments"}
