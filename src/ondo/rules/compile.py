"""Split a where-condition into an EventBridge pattern (done by the indexed matcher) and a
residual CEL expression (done per event), so that `pattern and residual` means exactly the
condition. Only parts whose pattern meaning is identical to the condition's meaning go into
the pattern; everything else stays in CEL.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from ondo.errors import PatternError
from ondo.patterns import compile as compile_pattern
from ondo.rules.conditions import ORDERING, And, Check, Compare, Node, Not, Or, to_cel

Pattern: TypeAlias = dict[str, Any]


class _Conflict(Exception):
    """Raised inside this module when two pattern fragments constrain the same place."""


def split_condition(base: Pattern, condition: Node | None) -> tuple[Pattern, str | None]:
    """The pattern `base` narrowed by every expressible conjunct, and the CEL of the rest."""
    pattern: Pattern = _copy(base)
    if condition is None:
        return pattern, None
    residual: list[Node] = []
    for part in _conjuncts(normalize(condition)):
        fragment = to_pattern(part)
        if fragment is None:
            residual.append(part)
            continue
        try:
            pattern = merge(pattern, fragment)
        except _Conflict:
            residual.append(part)
    if not residual:
        return pattern, None
    return pattern, to_cel(residual[0] if len(residual) == 1 else And(tuple(residual)))


def normalize(node: Node) -> Node:
    """Push `not` down to the tests (De Morgan) and flatten nested and/or of the same kind."""
    if isinstance(node, Not):
        return _negate(node.part)
    if isinstance(node, And | Or):
        parts = [normalize(part) for part in node.parts]
        flat: list[Node] = []
        for part in parts:
            flat.extend(part.parts if type(part) is type(node) else (part,))
        return type(node)(tuple(flat))
    return node


def _negate(node: Node) -> Node:
    if isinstance(node, Not):
        return normalize(node.part)
    if isinstance(node, And):
        return normalize(Or(tuple(Not(part) for part in node.parts)))
    if isinstance(node, Or):
        return normalize(And(tuple(Not(part) for part in node.parts)))
    return Not(node)


def _conjuncts(node: Node) -> tuple[Node, ...]:
    return node.parts if isinstance(node, And) else (node,)


def to_pattern(node: Node) -> Pattern | None:
    """The pattern that matches exactly the events satisfying `node`, or None if none does."""
    if isinstance(node, Check):
        matcher = _test_matcher(node)
        return None if matcher is None else _nest(node.field.path, matcher)
    if isinstance(node, Not):
        inner = node.part
        if isinstance(inner, Check) and inner.op == "exists":
            return _nest(inner.field.path, [{"exists": False}])
        return None
    if isinstance(node, And):
        return _and_pattern(node)
    if isinstance(node, Or):
        return _or_pattern(node)
    assert isinstance(node, Compare)
    return None


def _and_pattern(node: And) -> Pattern | None:
    pattern: Pattern = {}
    for part in node.parts:
        fragment = to_pattern(part)
        if fragment is None:
            return None
        try:
            pattern = merge(pattern, fragment)
        except _Conflict:
            return None
    return pattern


def _or_pattern(node: Or) -> Pattern | None:
    branches: list[Pattern] = []
    for part in node.parts:
        fragment = to_pattern(part)
        if fragment is None:
            return None
        # A branch that is itself an $or is spliced in: (a or b) or c == a or b or c.
        only_or = set(fragment) == {"$or"}
        branches.extend(fragment["$or"] if only_or else [fragment])
    return {"$or": branches}


def _test_matcher(test: Check) -> list[Any] | None:
    """The EventBridge matcher list for one test, or None when no matcher means the same."""
    value = test.value
    if test.op == "in":
        assert isinstance(value, tuple)
        return list(value)
    assert not isinstance(value, tuple)
    if test.op == "==":
        return [value]
    if test.op == "!=":
        # EventBridge's anything-but takes only strings and numbers.
        is_text_or_number = isinstance(value, str | int | float) and not isinstance(value, bool)
        return [{"anything-but": value}] if is_text_or_number else None
    if test.op in ORDERING:
        return [{"numeric": [test.op, value]}]
    if test.op == "startswith":
        return [{"prefix": value}]
    if test.op == "endswith":
        return [{"suffix": value}]
    if test.op == "exists":
        return [{"exists": True}]
    assert test.op == "contains" and isinstance(value, str)
    return _contains_matcher(value)


def _contains_matcher(text: str) -> list[Any] | None:
    if not text:
        return [{"prefix": ""}]
    escaped = text.replace("\\", "\\\\").replace("*", "\\*")  # wildcard escapes
    matcher = [{"wildcard": f"*{escaped}*"}]
    try:  # very repetitive text makes a wildcard too costly for the matcher: leave it to CEL
        compile_pattern({"field": matcher})
    except PatternError:
        return None
    return matcher


def _nest(path: tuple[str, ...], matcher: list[Any]) -> Pattern:
    pattern: Any = matcher
    for key in reversed(path):
        pattern = {key: pattern}
    result: Pattern = pattern
    return result


def merge(left: Pattern, right: Pattern) -> Pattern:
    """Both patterns at once; raises _Conflict when that would not mean "left and right".

    That is when they test the same field, both carry an $or at one level, or two of their
    fields share a parent inside the payload: should that parent be a list of objects, the
    matcher takes both fields from the same element (event-ruler's array consistency), while
    the condition lets each test pick any element.
    """
    for left_path in _paths(left):
        for right_path in _paths(right):
            if left_path == right_path or _shared_prefix(left_path, right_path) >= 2:
                raise _Conflict(".".join(right_path))
    return _merge(left, right)


def _merge(left: Pattern, right: Pattern) -> Pattern:
    merged = dict(left)
    for key, value in right.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict) and key != "$or":
            merged[key] = _merge(merged[key], value)
        else:
            raise _Conflict(key)
    return merged


def _paths(pattern: Pattern, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The field paths a pattern tests, looking into every $or branch."""
    paths: list[tuple[str, ...]] = []
    for key, value in pattern.items():
        if key == "$or":
            for branch in value:
                paths.extend(_paths(branch, prefix))
        elif isinstance(value, dict):
            paths.extend(_paths(value, (*prefix, key)))
        else:
            paths.append((*prefix, key))
    return paths


def _shared_prefix(left: tuple[str, ...], right: tuple[str, ...]) -> int:
    shared = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        shared += 1
    return shared


def _copy(value: Any) -> Any:
    """A deep copy of a pattern, so that pattern and base_pattern share nothing."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    return [_copy(item) for item in value] if isinstance(value, list) else value
