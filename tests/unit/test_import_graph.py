"""The import graph between ondo's packages: no cycles, and the arrows of ARCHITECTURE.md.

A node is a package or module directly under `ondo` (`ondo.rules`, `ondo.platform`,
`ondo.events`, ...): imports inside one package are its own business. Every import counts:
at module level, inside a function, and under `if TYPE_CHECKING:`. A type-only import is still
a dependency: the code cannot be read or type-checked without the other package, and it is how
the platform object reaches the domain (`platform: Platform`), which is what the arrows forbid.

Today's violations are listed in KNOWN_VIOLATIONS, each with why it is there. The list may only
shrink: an entry that no longer occurs fails the test, so whoever removes a violation removes
its entry too, and a new violation fails until its arrow is turned around.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ondo

SRC = Path(ondo.__file__).parent

# The layers, top to bottom (docs: /ARCHITECTURE.md "Which way the arrows point").
ENTRY = {"api", "cli", "client", "credentials", "server", "platform", "__main__"}  # wiring, ways in
DOMAIN = {"actions", "rules", "deploy", "functions", "sources", "security", "retention"}
CONTRACTS = {
    "patterns",
    "events",
    "errors",
    "clock",
    "config",
    "durations",
    "units",
    "ids",
    "boundedjson",
    "destinations",
    "datadir",
    "deadlines",
    "metrics",
    "testing",
    "notices",
}
BOTTOM = {"backends", "runtime"}  # the bus and store engines, and the sandbox

# (importer, imported) package edges that break a rule today; each says why and who mends it.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def _node(module: str) -> str | None:
    """The package or module directly under `ondo` that `module` belongs to (None: not ondo)."""
    parts = module.split(".")
    if parts[0] != "ondo" or len(parts) < 2:
        return None
    top = parts[1]
    return top if (SRC / top).is_dir() or (SRC / f"{top}.py").is_file() else None


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in the file, wherever it stands."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> where (file:line), between different nodes."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        source = _node(_module_of(path)) or path.stem
        for name, line in _imported(path):
            target = _node(name)
            if target is not None and target != source:
                where = f"{path.relative_to(SRC)}:{line}"
                found = edges.setdefault((source, target), [])
                if where not in found:
                    found.append(where)
    return edges


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _forbidden(importer: str, imported: str) -> str | None:
    """Which arrow the edge breaks, or None."""
    if importer in DOMAIN and imported in ENTRY:
        return "the domain never imports the API, the CLI or the platform's wiring"
    if importer in BOTTOM and imported in DOMAIN | ENTRY:
        return "backends and the runtime never import the domain (or anything above it)"
    if importer in CONTRACTS and imported in DOMAIN | ENTRY:
        return "contracts never import the domain (or anything above it)"
    return None


def test_every_package_has_a_layer() -> None:
    nodes = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if p.is_dir()}
    nodes -= {"__init__", "__pycache__"}
    unplaced = nodes - ENTRY - DOMAIN - CONTRACTS - BOTTOM
    assert unplaced == set(), f"put {sorted(unplaced)} in a layer of tests/unit/test_import_graph"


def test_the_arrows_point_down() -> None:
    edges = import_graph()
    broken = {
        f"{a} -> {b} ({why}; {', '.join(edges[a, b][:3])})"
        for (a, b) in edges
        if (why := _forbidden(a, b)) is not None and (a, b) not in KNOWN_VIOLATIONS
    }
    assert broken == set()


def test_no_import_cycle_between_packages() -> None:
    edges = set(import_graph()) - KNOWN_VIOLATIONS
    cycles = _cycles(edges)
    assert cycles == [], f"import cycles between {cycles}: turn one arrow of each around"


def test_the_known_violations_are_not_stale() -> None:
    """An entry that no longer occurs must go, so the list only shrinks."""
    edges = import_graph()
    gone = {edge for edge in KNOWN_VIOLATIONS if edge not in edges}
    assert gone == set(), f"no longer imported: remove {sorted(gone)} from KNOWN_VIOLATIONS"
    needed = {
        edge
        for edge in KNOWN_VIOLATIONS
        if _forbidden(*edge) is None and edge not in _cycle_edges(set(edges))
    }
    assert needed == set(), f"{sorted(needed)} break no rule: remove them from KNOWN_VIOLATIONS"


def _cycle_edges(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges between nodes of one cycle (those the known list may hold to break it)."""
    inside = set()
    for component in _cycles(edges):
        members = set(component)
        inside |= {(a, b) for a, b in edges if a in members and b in members}
    return inside


def test_the_graph_sees_every_kind_of_import() -> None:
    """Guards the test itself: relative, lazy and TYPE_CHECKING imports all count."""
    edges = import_graph()
    assert ("platform", "rules") in edges  # a plain `from ondo.rules... import`
    assert any("runtime/runtime.py" in w for w in edges["runtime", "config"])  # TYPE_CHECKING
    assert _cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert _forbidden("rules", "api") is not None and _forbidden("api", "rules") is None
