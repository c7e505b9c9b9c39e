"""Parse and validate an EventBridge event pattern into alternatives of field conditions.

A pattern is an object whose leaves are lists of values or operator objects; `$or` splits it
into alternatives. Every error names the dotted path of the offending field and says why.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ondo.errors import PatternError, PatternTooLarge
from ondo.patterns.field import Field
from ondo.patterns.limits import (
    MAX_ALTERNATIVES,
    MAX_PATTERN_STATES,
    check_json_text,
    check_path,
    check_tree,
)
from ondo.patterns.operators import (
    AnythingBut,
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Numeric,
    Operator,
    Prefix,
    Suffix,
    Wildcard,
)
from ondo.patterns.values import is_number, show
from ondo.patterns.wildcards import MAX_COMPLEXITY, complexity, parse_wildcard

Alternative = tuple[Field, ...]
_LOWER = {">": False, ">=": True}
_UPPER = {"<": False, "<=": True}


def parse_pattern(pattern: Mapping[str, Any] | str | bytes) -> tuple[Any, list[Alternative]]:
    """The pattern as a dict and its alternatives; raises PatternError naming path and reason
    (PatternTooLarge naming the bound of ondo.patterns.limits it exceeds)."""
    if isinstance(pattern, str | bytes):
        check_json_text(pattern, "pattern")
        pattern = _load_json(pattern)
    if not isinstance(pattern, Mapping):
        raise PatternError(f"pattern must be a JSON object, got {show(pattern)}")
    if not pattern:
        raise PatternError('pattern is empty: name at least one field, e.g. {"type": ["x"]}')
    check_tree(pattern, "pattern")  # bounds what the recursive walk below may meet
    alternatives = [tuple(fields) for fields in _object(pattern, "")]
    for fields in alternatives:
        _check_complexity(fields)
    alternatives = _unique(alternatives)
    _check_states(sum(map(len, alternatives)), "")
    return pattern, alternatives


def _load_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)  # duplicate keys: the last one wins, as in EventBridge
    except json.JSONDecodeError as exc:
        raise PatternError(
            f"pattern is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(obj: Mapping[Any, Any], path: str) -> list[list[Field]]:
    """Alternatives (lists of fields) for one pattern object."""
    alternatives: list[list[Field]] = [[]]
    for key, value in obj.items():
        if not isinstance(key, str):
            raise PatternError(f"{path or 'pattern'}: field names must be strings, got {key!r}")
        if key == "$or" and isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
            alternatives = _product(alternatives, _or(value, path), path)
        elif isinstance(value, Mapping):
            here = _join(path, key)
            if not value:
                raise PatternError(f"{here}: an empty object matches nothing; name a field in it")
            alternatives = _product(alternatives, _object(value, here), here)
        elif isinstance(value, list):
            field = _field(_join(path, key), value)
            for fields in alternatives:
                fields.append(field)
            _check_states(len(alternatives) * len(alternatives[0]), path)  # a lower bound
        else:
            raise PatternError(
                f"{_join(path, key)}: values must be in a list, got {show(value)}; "
                f"write [{show(value)}]"
            )
    return alternatives


def _or(items: list[Any], path: str) -> list[list[Field]]:
    where = _join(path, "$or")
    if len(items) < 2:
        raise PatternError(f"{where}: needs at least two alternatives (objects) in its list")
    result: list[list[Field]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not item:
            raise PatternError(f"{where}[{index}]: each alternative must be a non-empty object")
        result.extend(_object(item, path))
        _check_alternatives(len(result), where)
    return result


def _product(left: list[list[Field]], right: list[list[Field]], path: str) -> list[list[Field]]:
    """Every left alternative joined with every right one, refused before it is built when
    that would pass MAX_ALTERNATIVES or MAX_PATTERN_STATES."""
    _check_alternatives(len(left) * len(right), path)
    states = len(right) * sum(map(len, left)) + len(left) * sum(map(len, right))
    _check_states(states, path)
    return [a + b for a, b in itertools.product(left, right)]


def _check_alternatives(count: int, path: str) -> None:
    if count > MAX_ALTERNATIVES:
        raise PatternTooLarge(
            f"{path or 'pattern'}: $or expands into more than {MAX_ALTERNATIVES} combinations "
            "(MAX_ALTERNATIVES); split the pattern into several rules"
        )


def _check_states(states: int, path: str) -> None:
    if states > MAX_PATTERN_STATES:
        raise PatternTooLarge(
            f"{path or 'pattern'}: the pattern would add more than {MAX_PATTERN_STATES} states "
            "to the matcher (MAX_PATTERN_STATES: one per field condition of each $or "
            "alternative); split it into several rules"
        )


def _unique(alternatives: list[Alternative]) -> list[Alternative]:
    seen: set[frozenset[Any]] = set()
    result = []
    for fields in alternatives:
        key = frozenset(field.key for field in fields)
        if key not in seen:
            seen.add(key)
            result.append(fields)
    return result


def _field(path: str, items: list[Any]) -> Field:
    check_path(path)
    if not items:
        raise PatternError(f"{path}: an empty list matches nothing; list at least one value")
    operators: dict[Any, Operator] = {}
    absent_ok = False
    for item in items:
        if isinstance(item, Mapping):
            operator = _operator(path, item)
            if operator is None:
                absent_ok = True
                continue
        elif isinstance(item, list):
            raise PatternError(f"{path}: a value list cannot hold a list, got {show(item)}")
        elif item is None or isinstance(item, str | bool) or _finite(item):
            operator = Exact(item)
        else:
            raise PatternError(f"{path}: {show(item)} is not a JSON value a pattern can match")
        operators.setdefault(operator.key, operator)
    return Field(path, tuple(operators.values()), absent_ok)


def _finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _operator(path: str, item: Mapping[Any, Any]) -> Operator | None:
    """The operator an object names; None for {"exists": false}."""
    if len(item) != 1:
        raise PatternError(
            f"{path}: an operator object holds exactly one operator, got {show(dict(item))}"
        )
    ((name, operand),) = item.items()
    build = _OPERATORS.get(name)
    if build is None:
        hint = "; operator names are lower-case" if str(name).lower() in _OPERATORS else ""
        known = ", ".join(sorted(_OPERATORS))
        raise PatternError(f'{path}: unknown operator "{name}" (expected one of {known}){hint}')
    return build(path, operand)


def _string(path: str, what: str, operand: Any, allow_empty: bool = True) -> str:
    if not isinstance(operand, str) or (not allow_empty and not operand):
        need = "a string" if allow_empty else "a non-empty string"
        raise PatternError(f"{path}: {what} needs {need}, got {show(operand)}")
    return operand


def _strings(path: str, what: str, operand: Any, allow_empty: bool = True) -> list[str]:
    """One string or a non-empty list of strings."""
    if isinstance(operand, list):
        if not operand:
            raise PatternError(f"{path}: {what} needs a string or a non-empty list of strings")
        return [_string(path, what, item, allow_empty) for item in operand]
    return [_string(path, what, operand, allow_empty)]


def _affix(kind: type[Prefix] | type[Suffix]) -> Callable[[str, Any], Operator]:
    name = kind.__name__.lower()

    def build(path: str, operand: Any) -> Operator:
        if isinstance(operand, Mapping) and list(operand) == ["equals-ignore-case"]:
            text = _string(path, f"{name} equals-ignore-case", operand["equals-ignore-case"])
            return kind(text, ignore_case=True)
        if not isinstance(operand, str):
            raise PatternError(
                f'{path}: {name} needs a string or {{"equals-ignore-case": string}}, '
                f"got {show(operand)}"
            )
        return kind(operand)

    return build


def _equals_ignore_case(path: str, operand: Any) -> Operator:
    return EqualsIgnoreCase(_string(path, "equals-ignore-case", operand))


def _wildcard(path: str, operand: Any) -> Wildcard:
    text = _string(path, "wildcard", operand)
    try:
        return Wildcard(text, parse_wildcard(text))
    except ValueError as exc:
        raise PatternError(f"{path}: wildcard {show(text)}: {exc}") from exc


def _exists(path: str, operand: Any) -> Operator | None:
    if not isinstance(operand, bool):
        raise PatternError(f"{path}: exists needs true or false, got {show(operand)}")
    return Exists() if operand else None


def _cidr(path: str, operand: Any) -> Operator:
    text = _string(path, "cidr", operand)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PatternError(
            f'{path}: cidr needs an IP address or network such as "10.0.0.0/24", got {show(text)}'
        ) from exc
    return Cidr(text, network)


def _numeric(path: str, operand: Any) -> Operator:
    items = operand if isinstance(operand, list) else [operand]
    pairs = list(zip(items[::2], items[1::2], strict=False))
    well_formed = isinstance(operand, list) and len(items) in (2, 4)
    if not well_formed or not all(
        isinstance(op, str) and op in ("=", *_LOWER, *_UPPER) and _finite(num) for op, num in pairs
    ):
        got = ", ".join(show(item) for item in items)
        raise PatternError(f"{path}: numeric needs an operator and a number, got {got}")
    if len(pairs) == 1 and pairs[0][0] == "=":
        number = pairs[0][1]
        return Exact(number, label=f"numeric = {show(number)}")
    return _range(path, pairs)


def _range(path: str, pairs: list[tuple[str, Any]]) -> Operator:
    low, low_inclusive, high, high_inclusive = -math.inf, False, math.inf, False
    lows = [(num, _LOWER[op]) for op, num in pairs if op in _LOWER]
    highs = [(num, _UPPER[op]) for op, num in pairs if op in _UPPER]
    if "=" in (op for op, _ in pairs):
        raise PatternError(f'{path}: numeric "=" cannot be combined with other comparisons')
    if len(pairs) == 2 and (len(lows) != 1 or len(highs) != 1):
        raise PatternError(
            f"{path}: a numeric range needs one lower bound (> or >=) and one upper bound (< or <=)"
        )
    if lows:
        low, low_inclusive = lows[0]
    if highs:
        high, high_inclusive = highs[0]
    if low >= high:
        raise PatternError(
            f"{path}: numeric range is empty: lower bound {show(low)} is not below "
            f"upper bound {show(high)}"
        )
    return Numeric(low, low_inclusive, high, high_inclusive)


def _anything_but(path: str, operand: Any) -> Operator:
    where = f"{path}: anything-but"
    if isinstance(operand, Mapping):
        return _anything_but_operator(path, operand)
    values = operand if isinstance(operand, list) else [operand]
    strings = all(isinstance(v, str) for v in values)
    numbers = all(_finite(v) for v in values)
    if not values or not (strings or numbers):
        raise PatternError(
            f"{where} needs a string, a number, a list of only strings or only numbers, "
            f"or an operator object, got {show(operand)}"
        )
    return AnythingBut(tuple(Exact(v) for v in values), show(operand))


_INNER_FORMS = ("equals-ignore-case", "prefix", "suffix", "wildcard")


def _anything_but_operator(path: str, operand: Mapping[Any, Any]) -> Operator:
    name = next(iter(operand), None)
    if len(operand) != 1 or name not in _INNER_FORMS:
        raise PatternError(
            f"{path}: anything-but takes one of {', '.join(_INNER_FORMS)} as an operator, "
            f"got {show(dict(operand))}"
        )
    value = operand[name]
    what = f"anything-but {name}"
    excluded: list[Operator]
    if name == "prefix":
        excluded = [Prefix(s) for s in _strings(path, what, value, allow_empty=False)]
    elif name == "suffix":
        excluded = [Suffix(s) for s in _strings(path, what, value, allow_empty=False)]
    elif name == "equals-ignore-case":
        excluded = [EqualsIgnoreCase(s) for s in _strings(path, what, value)]
    else:
        _strings(path, what, value)
        excluded = [_wildcard(path, s) for s in (value if isinstance(value, list) else [value])]
    return AnythingBut(tuple(excluded), f"{name} {show(value)}")


def _check_complexity(fields: Sequence[Field]) -> None:
    by_path: dict[str, list[list[str | int]]] = {}
    for field in fields:
        for operator in field.operators:
            inner = operator.excluded if isinstance(operator, AnythingBut) else (operator,)
            for op in inner:
                if isinstance(op, Wildcard):
                    by_path.setdefault(field.path, []).append(op.tokens)
    for path, wildcards in by_path.items():
        score = complexity(wildcards)
        if score > MAX_COMPLEXITY:
            raise PatternError(
                f"{path}: wildcard pattern is too complex (complexity {score} > {MAX_COMPLEXITY});"
                ' use fewer "*" characters or fewer repeated character sequences after a "*"'
            )


_OPERATORS: dict[str, Callable[[str, Any], Operator | None]] = {
    "anything-but": _anything_but,
    "cidr": _cidr,
    "equals-ignore-case": _equals_ignore_case,
    "exists": _exists,
    "numeric": _numeric,
    "prefix": _affix(Prefix),
    "suffix": _affix(Suffix),
    "wildcard": _wildcard,
}
