"""The indexed Matcher: which of many rules match an event, never looping over all rules.

The cost of an event is set by the transitions its values take (the rules it matches or
partially matches), not by how many rules there are. Like event-ruler, rules are compiled
into a shared state machine. Each `$or` alternative of a
rule is a sequence of field conditions in a canonical order (cheap, selective kinds first); a
state holds, per field path, a ValueIndex from leaf values to next states, and rules whose last
condition led there. Matching flattens the event once (only paths some rule names) and walks
only the transitions the event's values take; events with arrays carry the array indexes chosen
so far, so that fields matched inside one array of objects come from the same element.

What does grow with the number of rules is memory: at 10,000 rules an event's states were last
touched thousands of events ago and are cold in cache, so one state visit costs several times
what it costs at 10 rules. Hence plain events (no arrays, the common case) walk a compiled form
of the machine that touches few objects per visit (program.py).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ondo.patterns.field import Candidates, Field, Trail, consistent, nested_elements
from ondo.patterns.index import ValueIndex
from ondo.patterns.pattern import CompiledPattern, compile_pattern
from ondo.patterns.program import Program, program_of, walk

Flat = dict[str, list[Any]]
Chosen = tuple[tuple[int, int], ...]
Wanted = frozenset[str]


_LEAF_TYPES = frozenset({str, int, float, bool, type(None)})  # JSON scalars, tested first


class _Tree(dict[str, "tuple[str, _Tree]"]):
    """Wanted paths as nested keys: segment -> (dotted path so far, deeper segments)."""


class _State:
    """A point in the machine: conditions matched so far; where the next ones lead.

    Built for editing; the walk reads `program` instead (see program.py), compiled on first use
    and dropped by any edit of a route through this state. `absent`/`rules` stay None unless used.
    """

    __slots__ = ("absent", "edges", "fields", "program", "rules")

    def __init__(self) -> None:
        self.program: Program | None = None
        self.absent: dict[str, list[_State]] | None = None  # path -> next states if no leaf
        self.rules: dict[str, int] | None = None  # rule id -> alternatives of it ending here
        self.fields: dict[str, ValueIndex[_State]] = {}
        self.edges: dict[tuple[Any, ...], _Edge] = {}

    def count(self, rule_id: str, delta: int) -> None:
        """Record one more (or one fewer) alternative of a rule ending here."""
        rules = self.rules or {}
        rules[rule_id] = rules.get(rule_id, 0) + delta
        if not rules[rule_id]:
            del rules[rule_id]
        self.rules = rules or None


class _Edge:
    """One field condition out of a state, shared by every rule alternative that takes it."""

    __slots__ = ("field", "following", "users")

    def __init__(self, field: Field) -> None:
        self.field = field
        self.following = _State()
        self.users = 0


def _order(field: Field) -> tuple[Any, ...]:
    """Canonical condition order: indexable conditions before scanned ones, shallow paths
    (routing attributes such as type and source) before payload fields, then the more selective
    kinds first, and among equally selective kinds the event type first (the attribute that
    tells events apart most: a type prefix names fewer events than a source prefix, typically).
    Equal rules thus share their states, and payload conditions are only looked at for events
    whose type or source already matched."""
    operators = tuple(sorted(repr(op.key) for op in field.operators))
    rank = field.rank()
    path = field.path
    return (rank == 3, len(field.segments), rank, path != "type", path, operators, field.absent_ok)


def _routes(alternatives: tuple[tuple[Field, ...], ...]) -> list[tuple[Field, ...]]:
    """The alternatives to insert, each in canonical order."""
    return [tuple(sorted(fields, key=_order)) for fields in alternatives]


class Matcher:
    """Many patterns under rule ids; `matching(event)` returns the ids of those that match.

    Several threads may call `matching` at once (lazily built tables are rebuilt identically);
    `add` and `remove` need the caller to hold off matching while they run.
    """

    def __init__(self) -> None:
        self._root = _State()
        self._rules: dict[str, tuple[CompiledPattern, list[list[_Edge]]]] = {}
        self._path_users: dict[str, int] = {}
        self._wanted: Wanted | None = frozenset()
        self._tree = _Tree()

    def add(self, rule_id: str, pattern: Mapping[str, Any] | str | CompiledPattern) -> None:
        """Add a rule, replacing any rule with the same id; raises PatternError if invalid."""
        compiled = compile_pattern(pattern)
        self.remove(rule_id)
        routes = [self._insert(rule_id, fields) for fields in _routes(compiled.alternatives)]
        self._rules[rule_id] = (compiled, routes)

    def remove(self, rule_id: str) -> None:
        """Remove a rule; removing an id that is not there does nothing."""
        entry = self._rules.pop(rule_id, None)
        if entry is None:
            return
        for route in entry[1]:
            self._withdraw(rule_id, route)

    def pattern(self, rule_id: str) -> CompiledPattern:
        """The compiled pattern of a rule (KeyError if absent)."""
        return self._rules[rule_id][0]

    def ids(self) -> list[str]:
        """The ids of the rules added (and not removed)."""
        return list(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def matching(self, event: Mapping[str, Any]) -> set[str]:
        """Ids of the rules whose pattern matches the event."""
        wanted = self._wanted if self._wanted is not None else self._wanted_paths()
        leaves: dict[str, Any] = {}
        if _flatten_plain(event, self._tree, leaves):
            return walk(program_of(self._root), leaves)
        values: Flat = {}
        trails: dict[str, list[Trail]] = {}
        _flatten(event, "", wanted, values, trails, ())
        return _walk_with_arrays(self._root, values, trails)

    def _insert(self, rule_id: str, fields: tuple[Field, ...]) -> list[_Edge]:
        """Add one route; its fields come in canonical order (see _routes)."""
        state, route = self._root, []
        for field in fields:
            edge = state.edges.get(field.key)
            if edge is None:
                edge = state.edges[field.key] = _Edge(field)
                self._connect(state, edge)
            edge.users += 1
            route.append(edge)
            state = edge.following
        state.count(rule_id, +1)
        _drop_programs(self._root, route)
        return route

    def _withdraw(self, rule_id: str, route: list[_Edge]) -> None:
        _drop_programs(self._root, route)
        state = self._root
        for edge in route:
            state = edge.following
        state.count(rule_id, -1)
        state = self._root
        for edge in route:
            edge.users -= 1
            if not edge.users:
                del state.edges[edge.field.key]
                self._disconnect(state, edge)
            state = edge.following

    def _connect(self, state: _State, edge: _Edge) -> None:
        field = edge.field
        if field.absent_ok:
            if state.absent is None:
                state.absent = {}
            state.absent.setdefault(field.path, []).append(edge.following)
        if field.operators:
            index = state.fields.get(field.path)
            if index is None:
                index = state.fields[field.path] = ValueIndex()
            for operator in field.operators:
                index.add(operator, edge.following)
        self._use_path(field.path, +1)

    def _disconnect(self, state: _State, edge: _Edge) -> None:
        field = edge.field
        if field.absent_ok:
            assert state.absent is not None
            targets = state.absent[field.path]
            targets.remove(edge.following)
            if not targets:
                del state.absent[field.path]
                state.absent = state.absent or None
        if field.operators:
            index = state.fields[field.path]
            for operator in field.operators:
                index.remove(operator, edge.following)
            if not index.size:
                del state.fields[field.path]
        self._use_path(field.path, -1)

    def _use_path(self, path: str, delta: int) -> None:
        users = self._path_users.get(path, 0) + delta
        if users:
            self._path_users[path] = users
        else:
            del self._path_users[path]
        self._wanted = None

    def _wanted_paths(self) -> Wanted:
        """Every path rules name, and each of its dot-boundary prefixes (to descend into)."""
        wanted: set[str] = set()
        tree = _Tree()
        for path in self._path_users:
            parts = path.split(".")
            wanted.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
            node = tree
            for end, part in enumerate(parts, start=1):
                node = node.setdefault(part, (sys.intern(".".join(parts[:end])), _Tree()))[1]
        self._tree = tree
        self._wanted = frozenset(wanted)  # last: matching() reads it before the tree
        return self._wanted


def _drop_programs(root: _State, route: list[_Edge]) -> None:
    """An edit along a route changes what its states (and so their ancestors) compile to."""
    root.program = None
    for edge in route:
        edge.following.program = None


def _flatten_plain(node: Mapping[str, Any], tree: _Tree, leaves: dict[str, Any]) -> bool:
    """Map each wanted path to its one leaf; False if an array is met, or two leaves at one
    path (a dotted key and a nested object spelling it): those take _flatten."""
    for key, child in node.items():
        entry = tree.get(key)
        if entry is None:
            if type(key) is not str or "." not in key:
                continue
            entry = _dotted(tree, key)  # an event key holding dots: follow each segment
            if entry is None:
                continue
        path, subtree = entry
        kind = type(child)
        if kind is dict or (kind not in _LEAF_TYPES and isinstance(child, Mapping)):
            if not _flatten_plain(child, subtree, leaves):
                return False
        elif kind is list or path in leaves:
            return False
        else:
            leaves[path] = child
    return True


def _dotted(tree: _Tree, key: str) -> tuple[str, _Tree] | None:
    entry = None
    for part in key.split("."):
        entry = tree.get(part)
        if entry is None:
            return None
        tree = entry[1]
    return entry


def _flatten(
    node: Mapping[str, Any],
    base: str,
    wanted: frozenset[str],
    values: Flat,
    trails: dict[str, list[Trail]],
    trail: Trail,
) -> None:
    """Collect leaves on wanted paths, with the array trail of each."""
    for key, child in node.items():
        path = f"{base}.{key}" if base else f"{key}"
        if path not in wanted:
            continue
        if isinstance(child, Mapping):
            _flatten(child, path, wanted, values, trails, trail)
        elif isinstance(child, list):
            _flatten_array(child, path, wanted, values, trails, trail)
        else:
            values.setdefault(path, []).append(child)
            trails.setdefault(path, []).append(trail)


def _flatten_array(
    items: list[Any],
    path: str,
    wanted: frozenset[str],
    values: Flat,
    trails: dict[str, list[Trail]],
    trail: Trail,
) -> None:
    array = id(items)
    for index, child in enumerate(items):
        here = (*trail, (array, index))
        if isinstance(child, Mapping):
            _flatten(child, path, wanted, values, trails, here)
        elif isinstance(child, list):
            for inner, inner_trail in nested_elements(child, here):
                if isinstance(inner, Mapping):
                    _flatten(inner, path, wanted, values, trails, inner_trail)
                else:
                    values.setdefault(path, []).append(inner)
                    trails.setdefault(path, []).append(inner_trail)
        else:
            values.setdefault(path, []).append(child)
            trails.setdefault(path, []).append(here)


def _walk_with_arrays(root: _State, values: Flat, trails: dict[str, list[Trail]]) -> set[str]:
    """Like program.walk, carrying the array indexes each path of transitions has committed to."""
    matched: set[str] = set()
    start: tuple[_State, Chosen] = (root, ())
    seen = {start}
    pending = [start]
    leaves: dict[str, Candidates] = {}
    while pending:
        state, chosen = pending.pop()
        if state.rules is not None:
            matched.update(state.rules)
        taken = dict(chosen)
        reached: list[tuple[_State, Chosen]] = []
        for path, index in state.fields.items():
            if path not in values:
                continue
            if path not in leaves:
                pairs = list(zip(values[path], trails[path], strict=True))
                leaves[path] = Candidates(pairs)
            _take(index, leaves[path], chosen, taken, reached)
        for path, targets in (state.absent or {}).items():
            if path not in values:
                reached.extend((target, chosen) for target in targets)
        for item in reached:
            if item not in seen:
                seen.add(item)
                pending.append(item)
    return matched


def _take(
    index: ValueIndex[_State],
    leaves: Candidates,
    chosen: Chosen,
    taken: dict[int, int],
    reached: list[tuple[_State, Chosen]],
) -> None:
    for value, trail in leaves.compatible(taken):
        if trail and not consistent(trail, taken):
            continue
        found: list[_State] = []
        index.collect(value, found)
        if not found:
            continue
        after = tuple(sorted({**taken, **dict(trail)}.items())) if trail else chosen
        reached.extend((target, after) for target in found)
