"""One field condition of a pattern, and how to find a dotted path's leaf values in an event.

A leaf found inside arrays carries a trail: ((id of array, index), ...) from the outermost array
in. Two leaves are consistent (may be used together by one rule) when they agree on the index
of every array they share, which is event-ruler's array-consistency rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ondo.patterns.operators import Operator
from ondo.patterns.values import show

Trail = tuple[tuple[int, int], ...]
NO_TRAIL: Trail = ()


class Field:
    """A path and the operators any one of which a leaf value there must pass."""

    __slots__ = ("absent_ok", "key", "operators", "path", "segments", "single")

    def __init__(self, path: str, operators: tuple[Operator, ...], absent_ok: bool) -> None:
        self.path = path
        self.segments = tuple(path.split("."))
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


def leaves(event: Mapping[str, Any], segments: tuple[str, ...]) -> tuple[list[Any], list[Trail]]:
    """Leaf values at a dotted path (event keys may hold dots too) and their array trails."""
    values: list[Any] = []
    trails: list[Trail] = []
    if len(segments) == 1:  # the common case: a top-level attribute
        if segments[0] in event:
            _emit(event[segments[0]], NO_TRAIL, values, trails)
        return values, trails
    _collect(event, segments, 0, NO_TRAIL, values, trails)
    return values, trails


def _collect(
    node: Mapping[str, Any],
    segments: tuple[str, ...],
    start: int,
    trail: Trail,
    values: list[Any],
    trails: list[Trail],
) -> None:
    key = segments[start]
    for end in range(start + 1, len(segments) + 1):
        if end > start + 1:
            key = f"{key}.{segments[end - 1]}"
        if key not in node:
            continue
        if end == len(segments):
            _emit(node[key], trail, values, trails)
        else:
            _descend(node[key], segments, end, trail, values, trails)


def _descend(
    node: Any,
    segments: tuple[str, ...],
    start: int,
    trail: Trail,
    values: list[Any],
    trails: list[Trail],
) -> None:
    if isinstance(node, Mapping):
        _collect(node, segments, start, trail, values, trails)
    elif isinstance(node, list):
        array = id(node)
        for index, element in enumerate(node):
            _descend(element, segments, start, (*trail, (array, index)), values, trails)


def _emit(node: Any, trail: Trail, values: list[Any], trails: list[Trail]) -> None:
    if isinstance(node, list):
        array = id(node)
        for index, element in enumerate(node):
            _emit(element, (*trail, (array, index)), values, trails)
    elif not isinstance(node, Mapping):
        values.append(node)
        trails.append(trail)


def consistent(trail: Trail, chosen: dict[int, int]) -> bool:
    """Whether a leaf's trail agrees with the array indexes already chosen."""
    return all(chosen.get(array, index) == index for array, index in trail)


def show_values(values: list[Any]) -> str:
    return show(values[0]) if len(values) == 1 else show(values)
