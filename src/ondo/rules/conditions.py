"""Where-conditions: their syntax tree, their CEL form, and `Condition`, which evaluates CEL.

Meaning of a test on a field (the same as EventBridge patterns, so that the part of a condition
compiled into a pattern and the part left in CEL agree exactly): a path reaches zero or more
values — lists are looked into element by element, objects are not values — and a test on the
field is true when at least one of those values passes it. A missing field passes no test.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from ondo.errors import RuleError, RuleTooLarge
from ondo.patterns.field import nested_elements
from ondo.patterns.limits import MAX_PATH_SEGMENTS
from ondo.rules.limits import MAX_CEL_BYTES, MAX_CEL_DEPTH

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
class Check:
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


Node: TypeAlias = Check | Compare | Not | And | Or


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
    return _check_cel(node)


def _grouped(node: Node, always: bool = False) -> str:
    text = to_cel(node)
    return f"({text})" if always or isinstance(node, And | Or) else text


def _call(helper: str, field: Field) -> str:
    return f"{helper}[{json.dumps(field.dotted)}]"


def _check_cel(test: Check) -> str:
    """The cheapest CEL for one test: cel-python's cost grows with every node it walks."""
    value, field = test.value, test.field
    if isinstance(value, tuple):
        helpers = {_typed_helper(item) for item in value}
        if len(helpers) == 1 and "" not in helpers:
            items = ", ".join(_cel_literal(item) for item in value)
            return f"{_call(helpers.pop(), field)}.exists(v, v in [{items}])"
    elif test.op == "exists":
        return f"{_call('values', field)} != []"
    elif test.op in ORDERING:
        # Some value > N exactly when the highest does (and < N when the lowest does); the
        # helpers yield -inf / +inf for no numbers, so a missing field fails either way.
        helper = "highest" if test.op in (">", ">=") else "lowest"
        return f"{_call(helper, field)} {test.op} {_cel_literal(value)}"
    elif test.op in _STRING_METHODS:
        method = _STRING_METHODS[test.op]
        return f"{_call('strings', field)}.exists(v, v.{method}({_cel_literal(value)}))"
    elif test.op == "==" and _typed_helper(value):
        return f"{_cel_literal(value)} in {_call(_typed_helper(value), field)}"
    return f"{_call('values', field)}.exists(v, {_value_test('v', test)})"


_STRING_METHODS: Final = {
    "startswith": "startsWith",
    "endswith": "endsWith",
    "contains": "contains",
}


def _typed_helper(value: Any) -> str:
    """ "numbers" or "strings" for a literal one of those helpers yields, else ""."""
    if isinstance(value, str):
        return "strings"
    return "numbers" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _value_test(var: str, test: Check) -> str:
    """CEL that is true when the single value `var` (of any type) passes an equality test."""
    if test.op == "in":
        assert isinstance(test.value, tuple)
        return " || ".join(f"({_equals(var, item)})" for item in test.value)
    assert not isinstance(test.value, tuple) and test.op in ("==", "!=")
    equals = _equals(var, test.value)
    return equals if test.op == "==" else f"!({equals})"


def _equals(var: str, value: Literal) -> str:
    if value is None:
        return f"type({var}) == null_type"
    return f"type({var}) == {_cel_type(value)} && {var} == {_cel_literal(value)}"


def _compare_cel(node: Compare) -> str:
    if node.op in ORDERING:
        # Some pair x > y exactly when the highest x beats the lowest y.
        high, low = ("highest", "lowest") if node.op in (">", ">=") else ("lowest", "highest")
        return f"{_call(high, node.left)} {node.op} {_call(low, node.right)}"
    left, right = _call("values", node.left), _call("values", node.right)
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


def leaf_values(event: Mapping[str, Any], path: str) -> list[Any]:
    """The values a dotted path reaches, as EventBridge finds them: lists are looked into
    element by element, objects are not values, a key may itself hold dots ("a.b").

    Raises RuleTooLarge for a path of more than MAX_PATH_SEGMENTS segments (its look-up costs
    the square of them): only a CEL condition computing its paths can get one this far."""
    segments = path.split(".")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise RuleTooLarge(_long_path(path, len(segments)))
    found: list[Any] = []
    _collect(event, segments, 0, found)
    return found


def _long_path(path: str, segments: int) -> str:
    shown = path if len(path) <= 60 else f"{path[:60]}…"
    return (
        f"the condition looks up the path {shown!r} of {segments} segments; at most "
        f"{MAX_PATH_SEGMENTS} (MAX_PATH_SEGMENTS) are allowed"
    )


def _collect(node: Mapping[str, Any], segments: list[str], start: int, found: list[Any]) -> None:
    for end in range(start + 1, len(segments) + 1):
        key = ".".join(segments[start:end])
        if key not in node:
            continue
        if end == len(segments):
            _emit(node[key], found)
        else:
            _descend(node[key], segments, end, found)


def _descend(node: Any, segments: list[str], start: int, found: list[Any]) -> None:
    if isinstance(node, Mapping):
        _collect(node, segments, start, found)
    elif isinstance(node, list):
        for element, _trail in nested_elements(node, ()):
            if isinstance(element, Mapping):
                _collect(element, segments, start, found)


def _emit(node: Any, found: list[Any]) -> None:
    if isinstance(node, list):
        found.extend(e for e, _trail in nested_elements(node, ()) if not isinstance(e, Mapping))
    elif not isinstance(node, Mapping):
        found.append(node)


def _cel_value(value: Any) -> Any:
    """A leaf as CEL sees it; every number becomes a double so that 5 == 5.0."""
    if value is None:
        return None
    if type(value) is bool:
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        return celtypes.DoubleType(float(value))
    if isinstance(value, str):
        return celtypes.StringType(value)
    return json_to_cel(value)


def _numbers(event: Mapping[str, Any], path: str) -> list[float]:
    found = leaf_values(event, path)
    return [float(v) for v in found if isinstance(v, int | float) and type(v) is not bool]


def _values(event: Mapping[str, Any], path: str) -> Any:
    return celtypes.ListType([_cel_value(v) for v in leaf_values(event, path)])


def _strings(event: Mapping[str, Any], path: str) -> Any:
    found = leaf_values(event, path)
    return celtypes.ListType([celtypes.StringType(v) for v in found if isinstance(v, str)])


# The path maps a condition may use: name -> what it yields for a path in one event.
PATH_MAPS: Final[dict[str, Callable[[Mapping[str, Any], str], Any]]] = {
    "values": _values,
    "numbers": lambda e, p: celtypes.ListType([celtypes.DoubleType(v) for v in _numbers(e, p)]),
    "strings": _strings,
    "highest": lambda e, p: celtypes.DoubleType(max(_numbers(e, p), default=-math.inf)),
    "lowest": lambda e, p: celtypes.DoubleType(min(_numbers(e, p), default=math.inf)),
}


class _PathMap(celtypes.MapType):
    """A CEL map from a dotted path to what one path map yields for it in one event, computed
    when used. A map index costs cel-python far less than a function call."""

    def __init__(self, event: Mapping[str, Any], find: Callable[[Mapping[str, Any], str], Any]):
        super().__init__()
        self._event = event
        self._find = find

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: Any) -> Any:
        return self._find(self._event, str(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key]


def _need_a_boolean(x: Any, y: Any, operator: str) -> None:
    if isinstance(x, celtypes.BoolType) or isinstance(y, celtypes.BoolType):
        return
    # cel-python's own message holds the repr of both errors, each holding the one before: a
    # chain of `&&` over missing fields would take time and memory exponential in its length.
    raise TypeError(f"neither side of {operator} is a boolean")


def _and(x: Any, y: Any) -> Any:
    """CEL `&&` (an error on one side is absorbed by false on the other)."""
    _need_a_boolean(x, y, "&&")
    return celtypes.logical_and(x, y)


def _or(x: Any, y: Any) -> Any:
    """CEL `||` (an error on one side is absorbed by true on the other)."""
    _need_a_boolean(x, y, "||")
    return celtypes.logical_or(x, y)


_FUNCTIONS: Final = {"_&&_": _and, "_||_": _or}
_ENVIRONMENT: Final = celpy.Environment()
# Errors a CEL program may raise on an event it does not fit (missing key, wrong type).
_EVAL_ERRORS: Final = (CELEvalError, TypeError, ValueError, KeyError, ZeroDivisionError)


class Condition:
    """A CEL expression compiled once; `evaluate` says whether an event satisfies it.

    The program sees `event` (the CloudEvent in its JSON form: attributes and `data`), `data`
    (the payload) and the path maps `values`, `numbers`, `strings`, `highest`, `lowest`
    (`highest["data.x"]`). A missing field, a type mismatch or a result that is not `true`
    make the condition false, never an exception.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        _check_source(source)
        try:
            tree = _ENVIRONMENT.compile(source)
        except CELParseError as exc:
            raise RuleError(f"condition is not valid CEL: {exc}") from exc
        _check_depth(tree)
        self._program = _ENVIRONMENT.program(tree, functions=_FUNCTIONS)
        names = {
            str(token)
            for token in tree.scan_values(lambda t: isinstance(t, lark.Token))
            if token.type == "IDENT"
        }
        self._maps = sorted(names & PATH_MAPS.keys())
        # Converting the whole event to CEL values is the dearest step: only when it is read.
        self._reads_event = bool(names & {"event", "data"})

    def evaluate(self, event: Mapping[str, Any]) -> bool:
        """True when the event satisfies the condition."""
        activation: dict[str, Any] = {name: _PathMap(event, PATH_MAPS[name]) for name in self._maps}
        try:
            if self._reads_event:
                # Inside the try: an integer past CEL's int64 in the event raises ValueError
                # here, and an event must never make a rule fail (nor be disabled for it).
                cel_event: Any = json_to_cel(dict(event))
                activation["event"] = cel_event
                activation["data"] = dict.get(cel_event, "data")  # MapType.get raises if absent
            result = self._program.evaluate(activation)
        except _EVAL_ERRORS:
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


# --- bounds (see ondo.rules.limits) ------------------------------------------------------

# A path map looked up with a literal path: values["data.a.b"].
_PATH_MAP_NAMES = "|".join(PATH_MAPS)
_LITERAL_PATH = re.compile(
    rf"""\b(?:{_PATH_MAP_NAMES})\s*\[\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)


def _check_source(source: str) -> None:
    """RuleTooLarge for CEL source past MAX_CEL_BYTES or looking up a path past
    MAX_PATH_SEGMENTS (leaf_values refuses those at run time; this says so up front)."""
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_CEL_BYTES:
        raise RuleTooLarge(
            f"the condition's CEL form is {size} bytes long; at most {MAX_CEL_BYTES} "
            "(MAX_CEL_BYTES) are allowed; split the rule"
        )
    for match in _LITERAL_PATH.finditer(source):
        path = match.group(1)[1:-1]
        if path.count(".") + 1 > MAX_PATH_SEGMENTS:
            raise RuleTooLarge(_long_path(path, path.count(".") + 1))


def _check_depth(tree: lark.Tree[Any]) -> None:
    """RuleTooLarge when the syntax tree is deeper than MAX_CEL_DEPTH: cel-python evaluates it
    by recursion. Measured without recursing."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_CEL_DEPTH:
            raise RuleTooLarge(
                f"the condition's CEL syntax tree is more than {MAX_CEL_DEPTH} levels deep "
                "(MAX_CEL_DEPTH; each parenthesis adds about ten); nest fewer parentheses or "
                "split the rule"
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))
