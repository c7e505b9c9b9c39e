"""Where-conditions: their syntax tree, their CEL form, and `Condition`, which evaluates CEL.

Meaning of a test on a field (the same as EventBridge patterns, so that the part of a condition
compiled into a pattern and the part left in CEL agree exactly): a path reaches zero or more
values — lists are looked into element by element, objects are not values — and a test on the
field is true when at least one of those values passes it. A missing field passes no test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from ondo.errors import RuleError

ORDERING: Final = frozenset({"<", "<=", ">", ">="})
Literal: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class Field:
    """A place in the event: ("data", "reading", "systolic") or an attribute like ("subject",)."""

    path: tuple[str, ...]
    column: int = 0

    @property
    def dotted(self) -> str:
        """The path as one dotted string, e.g. "data.reading.systolic"."""
        return ".".join(self.path)

    @property
    def name(self) -> str:
        """The field as written in a rule: `reading.systolic` or `$subject`."""
        return ".".join(self.path[1:]) if self.path[0] == "data" else f"${self.path[0]}"


@dataclass(frozen=True)
class Test:
    """A test of one field against literals; op is a comparison, in, startswith, endswith,
    contains or exists. For `in`, value is a tuple of literals; for exists, None."""

    field: Field
    op: str
    value: Literal | tuple[Literal, ...] = None


@dataclass(frozen=True)
class Compare:
    """A comparison of two fields (never expressible as a pattern)."""

    left: Field
    op: str
    right: Field


@dataclass(frozen=True)
class Not:
    """Negation of a condition."""

    part: Node


@dataclass(frozen=True)
class And:
    """All parts hold."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one part holds."""

    parts: tuple[Node, ...]


Node: TypeAlias = Test | Compare | Not | And | Or


# --- CEL form ---------------------------------------------------------------------------


def to_cel(node: Node) -> str:
    """The CEL expression with exactly the meaning of `node` (see the module docstring)."""
    if isinstance(node, And):
        return " && ".join(_grouped(part) for part in node.parts)
    if isinstance(node, Or):
        return " || ".join(_grouped(part) for part in node.parts)
    if isinstance(node, Not):
        return f"!{_grouped(node.part, always=True)}"
    if isinstance(node, Compare):
        return _compare_cel(node)
    return _test_cel(node)


def _grouped(node: Node, always: bool = False) -> str:
    text = to_cel(node)
    return f"({text})" if always or isinstance(node, And | Or) else text


def _values(field: Field) -> str:
    return f"values(event, {json.dumps(field.dotted)})"


def _test_cel(test: Test) -> str:
    if test.op == "exists":
        return f"size({_values(test.field)}) > 0"
    return f"{_values(test.field)}.exists(v, {_value_test('v', test)})"


def _value_test(var: str, test: Test) -> str:
    """CEL that is true when the single value `var` passes `test`; never a CEL error."""
    if test.op == "in":
        assert isinstance(test.value, tuple)
        return " || ".join(f"({_equals(var, item)})" for item in test.value)
    assert not isinstance(test.value, tuple)
    if test.op == "==":
        return _equals(var, test.value)
    if test.op == "!=":
        return f"!({_equals(var, test.value)})"
    if test.op in ORDERING:
        return f"type({var}) == double && {var} {test.op} {_cel_literal(test.value)}"
    method = {"startswith": "startsWith", "endswith": "endsWith", "contains": "contains"}
    return f"type({var}) == string && {var}.{method[test.op]}({_cel_literal(test.value)})"


def _equals(var: str, value: Literal) -> str:
    if value is None:
        return f"type({var}) == null_type"
    return f"type({var}) == {_cel_type(value)} && {var} == {_cel_literal(value)}"


def _compare_cel(node: Compare) -> str:
    left, right = _values(node.left), _values(node.right)
    if node.op in ORDERING:
        test = f"type(x) == double && type(y) == double && x {node.op} y"
    else:
        same = "type(x) == type(y) && (type(x) == null_type || x == y)"
        test = same if node.op == "==" else f"!({same})"
    return f"{left}.exists(x, {right}.exists(y, {test}))"


def _cel_type(value: Literal) -> str:
    if isinstance(value, bool):
        return "bool"
    return "double" if isinstance(value, int | float) else "string"


def _cel_literal(value: Literal) -> str:
    """A literal in CEL syntax; numbers are always doubles because `values` yields doubles."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    return json.dumps(value, ensure_ascii=False)


# --- evaluation -------------------------------------------------------------------------


def values(event: celtypes.Value, path: celtypes.Value) -> celtypes.ListType:
    """CEL function `values(event, "data.a.b")`: the values the path reaches, as EventBridge
    finds them: lists are looked into element by element, objects are not values, a key may
    itself hold dots ("a.b"); numbers come back as doubles; [] when the path is missing."""
    found: list[Any] = []
    if isinstance(event, celtypes.MapType):
        _collect(event, str(path).split("."), 0, found)
    return celtypes.ListType(found)


def _collect(node: celtypes.MapType, segments: list[str], start: int, found: list[Any]) -> None:
    for end in range(start + 1, len(segments) + 1):
        key = celtypes.StringType(".".join(segments[start:end]))
        if key not in node:
            continue
        if end == len(segments):
            _emit(node[key], found)
        else:
            _descend(node[key], segments, end, found)


def _descend(node: Any, segments: list[str], start: int, found: list[Any]) -> None:
    if isinstance(node, celtypes.MapType):
        _collect(node, segments, start, found)
    elif isinstance(node, celtypes.ListType):
        for element in node:
            _descend(element, segments, start, found)


def _emit(node: Any, found: list[Any]) -> None:
    if isinstance(node, celtypes.ListType):
        for element in node:
            _emit(element, found)
    elif isinstance(node, celtypes.IntType | celtypes.UintType):
        found.append(celtypes.DoubleType(float(node)))
    elif not isinstance(node, celtypes.MapType):
        found.append(node)


FUNCTIONS: Final[dict[str, Any]] = {"values": values}
_ENVIRONMENT: Final = celpy.Environment()
# Errors a CEL program may raise on an event it does not fit (missing key, wrong type).
_EVAL_ERRORS: Final = (CELEvalError, TypeError, ValueError, KeyError, ZeroDivisionError)


class Condition:
    """A CEL expression compiled once; `evaluate` says whether an event satisfies it.

    The program sees `event` (the CloudEvent in its JSON form: attributes and `data`) and
    `data` (the payload). It may call `values(event, "data.x")`. A missing field, a type
    mismatch or a result that is not `true` make the condition false, never an exception.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._program = _ENVIRONMENT.program(_ENVIRONMENT.compile(source), FUNCTIONS)
        except CELParseError as exc:
            raise RuleError(f"condition is not valid CEL: {exc}") from exc

    def evaluate(self, event: Mapping[str, Any]) -> bool:
        """True when the event satisfies the condition."""
        cel_event = json_to_cel(dict(event))
        data = None
        if isinstance(cel_event, celtypes.MapType) and "data" in cel_event:
            data = cel_event["data"]
        activation = {"event": cel_event, "data": data}
        try:
            result = self._program.evaluate(activation)
        except _EVAL_ERRORS:
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"
