"""One field condition of a pattern, and how to find a dotted path's leaf values in an event.

A leaf found inside arrays carries a trail: ((id of array, index), ...) from the outermost array
in. Two leaves are consistent (may be used together by one rule) when they agree on the index
of every array they share, which is event-ruler's array-consistency rule.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from ondo.patterns.operators import Operator
from ondo.patterns.values import show

_LEAF_TYPES = frozenset({str, int, float, bool, type(None)})  # JSON scalars, tested first
Trail = tuple[tuple[int, int], ...]
NO_TRAIL: Trail = ()


class Field:
    """A path and the operators any one of which a leaf value there must pass."""

    __slots__ = ("absent_ok", "joins", "key", "operators", "path", "segments", "single", "top")

    def __init__(self, path: str, operators: tuple[Operator, ...], absent_ok: bool) -> None:
        self.path = sys.intern(path)  # one shared object per path: look-ups stay in cache
        self.segments = tuple(path.split("."))
        self.joins = joins(self.segments)
        self.top = path if len(self.segments) == 1 else None  # a top-level key, looked up directly
        self.operators = operators
        self.absent_ok = absent_ok  # {"exists": false} is among the alternatives
        self.single = operators[0] if len(operators) == 1 else None
        self.key = (path, frozenset(op.key for op in operators), absent_ok)

    def test(self, value: Any) -> bool:
        """Whether one leaf value passes any of the operators."""
        if self.single is not None:
            return self.single.test(value)
        return any(op.test(value) for op in self.operators)

    def describe(self) -> str:
        parts = [op.describe() for op in self.operators]
        if self.absent_ok:
            parts.append("absent")
        return parts[0] if len(parts) == 1 else "one of: " + ", ".join(parts)

    def rank(self) -> int:
        """How selective an index look-up on this field is: exact values most, exists least."""
        kinds = {type(op).__name__ for op in self.operators}
        if self.absent_ok or not kinds or kinds & {"Exists", "AnythingBut", "Wildcard"}:
            return 3
        if kinds <= {"Exact", "EqualsIgnoreCase"}:
            return 0
        if kinds <= {"Exact", "EqualsIgnoreCase", "Prefix", "Suffix"}:
            return 1
        return 2

    def __repr__(self) -> str:
        return f"Field({self.path}: {self.describe()})"


Joins = tuple[tuple[tuple[int, str], ...], ...]


def joins(segments: tuple[str, ...]) -> Joins:
    """For each start segment, the event keys to try: ((end, "s[start]. ... .s[end-1]"), ...).

    Event keys may hold dots themselves ({"a.b": 1} is at path a.b), so at each level every
    dotted join of the remaining segments is a candidate key.
    """
    return tuple(
        tuple((end, ".".join(segments[start:end])) for end in range(start + 1, len(segments) + 1))
        for start in range(len(segments))
    )


def leaves(event: Mapping[str, Any], path_joins: Joins) -> tuple[list[Any], list[Trail]]:
    """Leaf values at a dotted path (given as its joins) and the array trail of each."""
    values: list[Any] = []
    trails: list[Trail] = []
    _collect(event, path_joins, 0, NO_TRAIL, values, trails)
    return values, trails


def _collect(
    node: Mapping[str, Any],
    path_joins: Joins,
    start: int,
    trail: Trail,
    values: list[Any],
    trails: list[Trail],
) -> None:
    last = len(path_joins)
    for end, key in path_joins[start]:
        if key not in node:
            continue
        child = node[key]
        if end == last:
            _emit(child, trail, values, trails)
        elif type(child) is dict or isinstance(child, Mapping):
            _collect(child, path_joins, end, trail, values, trails)
        elif type(child) is list:
            _descend(child, path_joins, end, trail, values, trails)


def _descend(
    items: list[Any],
    path_joins: Joins,
    start: int,
    trail: Trail,
    values: list[Any],
    trails: list[Trail],
) -> None:
    array = id(items)
    for index, element in enumerate(items):
        here = (*trail, (array, index))
        if type(element) is dict or isinstance(element, Mapping):
            _collect(element, path_joins, start, here, values, trails)
        elif type(element) is list:
            for inner, inner_trail in nested_elements(element, here):
                if type(inner) is dict or isinstance(inner, Mapping):
                    _collect(inner, path_joins, start, inner_trail, values, trails)


def _emit(node: Any, trail: Trail, values: list[Any], trails: list[Trail]) -> None:
    kind = type(node)
    if kind in _LEAF_TYPES:
        values.append(node)
        trails.append(trail)
    elif kind is list:
        for element, here in nested_elements(node, trail):
            if type(element) is not dict and not isinstance(element, Mapping):
                values.append(element)
                trails.append(here)
    elif kind is not dict and not isinstance(node, Mapping):
        values.append(node)
        trails.append(trail)


def nested_elements(items: list[Any], trail: Trail) -> Iterator[tuple[Any, Trail]]:
    """The elements of a list that are not lists, looking into lists in it at any depth, in
    order, each with its trail. Iterative: an event may nest lists deeper than Python recurses."""
    stack = [(id(items), enumerate(items), trail)]
    while stack:
        array, elements, outer = stack[-1]
        for index, element in elements:
            here = (*outer, (array, index))
            if type(element) is list:
                stack.append((id(element), enumerate(element), here))
                break
            yield element, here
        else:
            stack.pop()


class Candidates:
    """(value, trail) pairs of one field, found quickly by the array indexes already chosen.

    Leaves of one path lie in the same outermost array; once a rule has committed to an element
    of it, only that element's leaves can be used, so they are looked up, not scanned: a pattern
    with several fields over an array of n objects costs O(n), not O(n^fields).
    """

    __slots__ = ("_by_index", "array", "items")

    def __init__(self, items: list[tuple[Any, Trail]]) -> None:
        self.items = items
        outermost = {trail[0][0] if trail else None for _, trail in items}
        self.array = outermost.pop() if len(outermost) == 1 else None
        self._by_index: dict[int, list[tuple[Any, Trail]]] | None = None

    def compatible(self, chosen: dict[int, int]) -> list[tuple[Any, Trail]]:
        """The pairs whose outermost array index agrees with chosen (deeper ones unchecked)."""
        if self.array is None or self.array not in chosen:
            return self.items
        if self._by_index is None:
            self._by_index = {}
            for item in self.items:
                self._by_index.setdefault(item[1][0][1], []).append(item)
        return self._by_index.get(chosen[self.array], [])


def consistent(trail: Trail, chosen: dict[int, int]) -> bool:
    """Whether a leaf's trail agrees with the array indexes already chosen."""
    return all(chosen.get(array, index) == index for array, index in trail)


def show_values(values: list[Any]) -> str:
    return show(values[0]) if len(values) == 1 else show(values)
