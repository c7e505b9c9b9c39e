"""A compiled event pattern: `matches(event)` for one pattern, and `explain` for people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ondo.patterns.compiler import Alternative, parse_pattern
from ondo.patterns.field import NO_TRAIL, Candidates, Field, Trail, consistent, leaves, show_values


class CompiledPattern:
    """A validated pattern; immutable, safe to share between threads."""

    __slots__ = ("_ordered", "alternatives", "source")

    def __init__(self, source: Any, alternatives: list[Alternative]) -> None:
        self.source = source  # the pattern as parsed (a dict)
        self.alternatives: tuple[Alternative, ...] = tuple(alternatives)  # in pattern order
        self._ordered = tuple(tuple(sorted(fields, key=Field.rank)) for fields in self.alternatives)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether the event (a JSON object as a dict) matches the pattern."""
        return any(_alternative_matches(fields, event) for fields in self._ordered)

    def explain(self, event: Mapping[str, Any]) -> str | None:
        """None when the event matches, else a sentence naming the first field that failed."""
        reasons = []
        for fields in self.alternatives:
            reason = _explain_alternative(fields, event)
            if reason is None:
                return None
            reasons.append(reason)
        if len(reasons) == 1:
            return reasons[0]
        shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
        return f"none of the {len(reasons)} $or alternatives matched: {shown}"

    def __repr__(self) -> str:
        return f"CompiledPattern({self.source!r})"


def compile_pattern(pattern: Mapping[str, Any] | str | bytes | CompiledPattern) -> CompiledPattern:
    """Validate and compile a pattern given as a dict or JSON text."""
    if isinstance(pattern, CompiledPattern):
        return pattern
    source, alternatives = parse_pattern(pattern)
    return CompiledPattern(source, alternatives)


def explain(
    pattern: Mapping[str, Any] | str | CompiledPattern, event: Mapping[str, Any]
) -> str | None:
    """None if the event matches the pattern, else why not (the first failing field)."""
    return compile_pattern(pattern).explain(event)


_MISSING = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _alternative_matches(fields: Alternative, event: Mapping[str, Any]) -> bool:
    constrained: list[list[Trail]] = []
    for field in fields:
        if field.top is not None:  # a top-level attribute holding a plain value: no walk
            value = event.get(field.top, _MISSING)
            if type(value) in _SCALARS:
                if field.test(value):
                    continue
                return False
        values, trails = leaves(event, field.joins)
        if not values:
            if field.absent_ok:
                continue
            return False
        test = field.test
        if len(values) == 1 and not trails[0]:  # the common case: one value, in no array
            if not test(values[0]):
                return False
            continue
        hits = [trail for value, trail in zip(values, trails, strict=True) if test(value)]
        if not hits:
            return False
        if NO_TRAIL not in hits:
            constrained.append(list(dict.fromkeys(hits)))
    return len(constrained) < 2 or _choose(constrained, 0, {})


def _choose(options: list[list[Trail]], position: int, chosen: dict[int, int]) -> bool:
    """Whether one hit per field can be picked so that all agree on shared array indexes."""
    fields = sorted((Candidates([(None, trail) for trail in hits]) for hits in options), key=_size)
    return _pick(fields, position, chosen)


def _size(candidates: Candidates) -> int:
    return len(candidates.items)


def _pick(fields: list[Candidates], position: int, chosen: dict[int, int]) -> bool:
    if position == len(fields):
        return True
    for _, trail in fields[position].compatible(chosen):
        if not consistent(trail, chosen):
            continue
        added = [array for array, _ in trail if array not in chosen]
        chosen.update(trail)
        if _pick(fields, position + 1, chosen):
            return True
        for array in added:
            del chosen[array]
    return False


def _explain_alternative(fields: Alternative, event: Mapping[str, Any]) -> str | None:
    constrained: list[list[Trail]] = []
    names: list[str] = []
    for field in fields:
        values, trails = leaves(event, field.joins)
        if not values:
            if field.absent_ok:
                continue
            return f'field "{field.path}" is missing'
        hits = [t for v, t in zip(values, trails, strict=True) if field.test(v)]
        if not hits:
            if field.operators:
                return f"{field.path} is {show_values(values)}, pattern needs {field.describe()}"
            return f"{field.path} is {show_values(values)}, pattern needs it to be absent"
        if NO_TRAIL not in hits:
            constrained.append(list(dict.fromkeys(hits)))
            names.append(field.path)
    if len(constrained) < 2 or _choose(constrained, 0, {}):
        return None
    return (
        f"fields {', '.join(names)} each match, but only in different elements of the same "
        "array; a pattern's fields must match within one array element"
    )
