"""The architecture, checked: no import cycle between the project's files, the sim and
the real venues never import each other, and only the registry and the venues' own
folders name a venue."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connector", "hftlive", "strategies")
REAL_VENUES = ("binancefutures", "bybit")  # each a folder connector/<name>/


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path, known: dict) -> set[str]:
    """Project modules `name` imports, at any level (function-level imports included)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def test_no_import_cycle_between_files():
    g = _graph()
    # a package's __init__ is imported with any of its modules: an edge to the package
    # itself is no cycle of files unless the __init__ imports back
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            if m.startswith(n + "."):
                continue  # a module naming its own package (importing its __init__)
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_sim_and_the_real_venues_never_import_each_other():
    g = _graph()
    bad = []
    for m, deps in g.items():
        for d in deps:
            for v in REAL_VENUES:
                real = f"connector.{v}"
                sim_to_real = m.startswith("connector.sim") and d.startswith(real)
                real_to_sim = m.startswith(real) and d.startswith("connector.sim")
                if sim_to_real or real_to_sim:
                    bad.append((m, d))
    assert bad == []


def test_the_core_imports_no_venue():
    g = _graph()
    venues = ("connector.sim", *(f"connector.{v}" for v in REAL_VENUES))
    core = [m for m in g if m.startswith("connector") and not m.startswith(venues)]
    assert "connector.registry" in core and "connector.lifecycle" in core
    bad = [(m, d) for m in core for d in g[m] if d.startswith(venues)]
    assert bad == []


def test_venue_names_appear_only_in_the_registry_and_the_venues_own_folders():
    names = ("sim", *REAL_VENUES)
    bad = []
    for f in (ROOT / "connector").rglob("*.py"):
        rel = f.relative_to(ROOT / "connector")
        if rel.parts[0] in names or rel.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if any(n in node.value for n in REAL_VENUES) or node.value == "sim":
                    bad.append((str(rel), node.value[:60]))
    assert bad == []
