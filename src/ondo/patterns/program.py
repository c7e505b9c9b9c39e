"""The machine as the walk reads it: each state compiled into a chain of entries.

At 10,000 rules the states an event reaches were last touched thousands of events ago, so a
walk's cost is mostly the memory it touches (measured: the same machine runs 2.5x faster on
events of one type than on events of all its 3,333). The Matcher's states are built for editing
(edges, per-path value indexes, counters); a program keeps only what the walk reads, in as few
objects as possible: one 5-tuple per test of a state (64 bytes: one or two cache lines),

    (path, kind, operand, target, next entry of the state or None)

where a target is the first entry of the next state. A visit thus touches one small tuple per
path (not a state object, its table of paths, then an index per path). A path-less entry carries
the state's rule ids (kind RULES) or the states to enter when a path is absent (ABSENT). A
state's program is compiled on first use and dropped by any edit of a route through it (it holds
its children's programs, and every ancestor of an edited state is on the edited route).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ondo.patterns.index import ValueIndex
from ondo.patterns.operators import (
    AnythingBut,
    Cidr,
    Exact,
    Exists,
    Numeric,
    Operator,
    Prefix,
    Suffix,
    ip_number,
)
from ondo.patterns.values import value_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from ondo.patterns.field import Field
    from ondo.patterns.matcher import _State

Entry = tuple[str | None, int, Any, Any, "Entry | None"]
Part = tuple[str | None, int, Any, Any]  # an entry before chaining
Program = Entry | None  # a state's first entry; None only for the root of an empty machine

# Entry kinds: how the walk tests a leaf. DICT: exact values, a dict from value key to target(s);
# EXACT: one exact value, compared without a dict; NUMERIC ... EXISTS: one operator, tested
# inline; NONE_OF: anything-but over exact values (a set of value keys to be outside of); TEST:
# any other operator's own test; COLLECT: several operators found by their index; MEMO: many,
# remembered per string value. Path-less entries: RULE (the id of the one rule ending at a
# state), RULES (the ids of several), ABSENT (states entered if a path has no leaf).
DICT, EXACT, NUMERIC, PREFIX, SUFFIX, CIDR, EXISTS, NONE_OF, TEST, COLLECT, MEMO = range(11)
RULE, RULES, ABSENT = 11, 12, 13  # the greatest: one comparison tells them from the tests

_MEMO_SIZE = 4096  # strings remembered per memoised entry, at most
_SPLIT_UP_TO = 8  # non-exact operators at one path tested one by one; more: by their index
_NO_LEAF: Any = object()  # the event has no leaf at a path (None is a leaf: JSON null)
_NOTHING: Entry = (None, RULES, frozenset(), None, None)  # a chain that leads nowhere


def program_of(state: _State) -> Program:
    """The state's program, compiling it (and any descendant an edit dropped) if needed."""
    if state.program is None and (state.rules or state.fields or state.absent):
        _compile_tree(state)
    return state.program


def _needs_program(state: _State) -> bool:
    return state.program is None and bool(state.rules or state.fields or state.absent)


def _compile_tree(top: _State) -> None:
    """Compile `top` and each descendant lacking a program, children before their parent and
    each subtree's tuples one after another (so they lie close together). Iterative: a rule
    of many conditions is a long route, deeper than Python's recursion limit."""
    stack: list[tuple[_State, bool]] = [(top, False)]
    while stack:
        state, children_done = stack.pop()
        if children_done:
            state.program = _compile(state)
            continue
        stack.append((state, True))
        children = [edge.following for edge in state.edges.values()]
        stack.extend((child, False) for child in reversed(children) if _needs_program(child))


def _entry_of(state: _State) -> Entry:
    """The program of a state that some edge leads to (never empty: a route goes through it)."""
    program = program_of(state)
    assert program is not None
    return program


def _compile(state: _State) -> Entry:
    """The state's chain; its children have their programs already (see _compile_tree)."""
    parts: list[Part] = []
    if state.rules is not None and len(state.rules) == 1:
        parts.append((None, RULE, next(iter(state.rules)), None))
    elif state.rules is not None:
        # A frozenset: set.update copies its stored hashes without reading each rule id.
        parts.append((None, RULES, frozenset(state.rules), None))
    fields: dict[str, list[tuple[Field, _State]]] = {}
    for edge in state.edges.values():
        fields.setdefault(edge.field.path, []).append((edge.field, edge.following))
    for path, index in state.fields.items():
        parts += _entries(path, index, fields[path])
    for path, targets in (state.absent or {}).items():
        parts.append((None, ABSENT, path, tuple(map(_entry_of, targets))))
    chain = _chain(parts)
    assert chain is not None
    return chain


def _chain(parts: list[Part]) -> Entry | None:
    chain: Entry | None = None
    for part in reversed(parts):
        chain = (*part, chain)
    return chain


def _one_way(field: Field) -> bool:
    """Whether one leaf value passes at most one operator of the field: then an index holding
    it reaches each target at most once per value, and the walk need not look for repeats."""
    operators = field.operators
    if len(operators) == 1:
        return True
    lookups = {op.lookup for op in operators if isinstance(op, Exact)}
    return len(lookups) == len(operators)  # distinct exact values only


def _entries(
    path: str, index: ValueIndex[_State], fields: list[tuple[Field, _State]]
) -> list[Part]:
    """The entries testing one path: its exact values in one dict, then each other operator in
    an entry of its own, tested inline (an index's tables pay off only for many operators)."""
    others = index.others
    if others is not None and others.memo is not None:  # many operators: type, source
        return [(path, MEMO, _Memo(index), None)]
    if not all(_one_way(field) for field, _ in fields):
        return [_deduping(path, index)]
    parts = [_exact(path, index.exact)] if index.exact else []
    tests = [
        (op, to) for field, to in fields for op in field.operators if not isinstance(op, Exact)
    ]
    if len(tests) > _SPLIT_UP_TO:
        assert others is not None
        return [*parts, (path, COLLECT, _Collect(others.fast).collect, None)]
    return parts + [(path, *_test(op), _entry_of(to)) for op, to in tests]


def _exact(path: str, exact: dict[Any, Any]) -> Part:
    """Exact values in a dict; one value (and one target) compared without the dict."""
    if len(exact) == 1:
        ((key, found),) = exact.items()
        if type(found) is not list:
            return (path, EXACT, key, _entry_of(found))
    return (path, DICT, {key: _targets(found) for key, found in exact.items()}, None)


def _test(operator: Operator) -> tuple[int, Any]:
    """(kind, operand): how the walk tests one non-exact operator."""
    if isinstance(operator, Numeric):
        return NUMERIC, (
            operator.low,
            operator.low_inclusive,
            operator.high,
            operator.high_inclusive,
        )
    if isinstance(operator, Prefix | Suffix) and not operator.ignore_case:
        return (SUFFIX if isinstance(operator, Suffix) else PREFIX), operator.needle
    if isinstance(operator, Cidr):
        return CIDR, (operator.network.version, operator.low, operator.high)
    if isinstance(operator, Exists):
        return EXISTS, None
    excluded = _excluded_values(operator)
    if excluded is not None:
        return NONE_OF, excluded
    return TEST, operator.test


def _deduping(path: str, index: ValueIndex[_State]) -> Part:
    """An index where one value may pass two operators leading to one state (a field such as
    ["a", {"prefix": "a"}]): all its operators collected at once, repeats dropped."""
    return (path, COLLECT, _Collect(index.collect).collect, None)


def _excluded_values(operator: Any) -> frozenset[Any] | None:
    """The value keys an anything-but over exact values excludes (None for other operators)."""
    if not isinstance(operator, AnythingBut):
        return None
    keys = [x.lookup for x in operator.excluded if isinstance(x, Exact)]
    return frozenset(keys) if len(keys) == len(operator.excluded) else None


def _targets(found: Any) -> Any:
    """An exact dict's value: one state, or a list of several (as in ValueIndex.exact)."""
    return list(map(_entry_of, found)) if type(found) is list else _entry_of(found)


class _Collect:
    """Operators collected by their index, answering in programs rather than states."""

    __slots__ = ("fast",)

    def __init__(self, fast: Callable[[Any, list[_State]], None]) -> None:
        self.fast = fast

    def collect(self, value: Any, out: list[Entry]) -> None:
        found: list[_State] = []
        self.fast(value, found)
        out.extend(map(_entry_of, {id(state): state for state in found}.values()))


class _Memo:
    """What a string value reaches at an index of many operators (a routing attribute under
    many rules), exact values included: one dict look-up per value once seen. The entries of
    the states it reaches (an exact type, a type prefix, ...) are copied into one chain, made
    in one go: the walk follows one chain lying together instead of several spread out.
    (Copies are shallow, 6-tuples: what they lead to is shared.)"""

    __slots__ = ("index", "table")

    def __init__(self, index: ValueIndex[_State]) -> None:
        self.index = index
        self.table: dict[str, Entry] = {}

    def fill(self, value: Any) -> Entry:
        found: list[_State] = []
        hit = self.index.exact.get(value_key(value))
        if hit is not None:
            found.extend(hit) if type(hit) is list else found.append(hit)
        others = self.index.others
        if others is not None:
            others.collect(value, found)
        parts: list[Part] = []
        for state in {id(state): state for state in found}.values():
            entry = program_of(state)
            while entry is not None:
                parts.append(entry[:4])
                entry = entry[4]
        merged = _chain(parts) or _NOTHING
        if type(value) is str:
            if len(self.table) >= _MEMO_SIZE:
                self.table.clear()  # values that do not repeat: start over rather than track age
            self.table[value] = merged
        return merged


def walk(root: Program, leaves: dict[str, Any]) -> set[str]:
    """Follow every transition the event takes, given the one leaf at each path (no arrays, so
    no consistency to keep). The machine is a tree and each entry reaches a state at most once
    per value (see _one_way), so no state is reached twice: nothing to look for repeats."""
    matched: set[str] = set()
    pending = [root]
    push = pending.append
    while pending:
        entry = pending.pop()
        while entry is not None:
            path, kind, operand, target, entry = entry
            value = leaves.get(path, _NO_LEAF)  # type: ignore[arg-type]  # None: path-less entry
            if value is _NO_LEAF:
                if kind >= RULE:
                    if kind == RULE:
                        matched.add(operand)
                    elif kind == RULES:
                        matched.update(operand)
                    elif operand not in leaves:  # ABSENT
                        pending.extend(target)
                continue
            if kind == EXACT:  # one value: compared as the dict would, without the dict
                if (value_key(value) if type(value) is bool else value) == operand:
                    push(target)
            elif kind == DICT:
                hit = operand.get(value_key(value) if type(value) is bool else value)
                if hit is None:
                    pass
                elif type(hit) is list:
                    pending.extend(hit)
                else:
                    push(hit)
            elif kind == NUMERIC:  # the test of Intervals.collect, inline
                low, low_in, high, high_in = operand
                if (type(value) is int or type(value) is float) and (
                    (value > low or (value == low and low_in))
                    and (value < high or (value == high and high_in))
                ):
                    push(target)
            elif kind == PREFIX:
                if type(value) is str and value.startswith(operand):
                    push(target)
            elif kind == MEMO:
                found = operand.table.get(value) if type(value) is str else None
                push(operand.fill(value) if found is None else found)
            elif kind == NONE_OF:
                if (value_key(value) if type(value) is bool else value) not in operand:
                    push(target)
            elif kind == TEST:
                if operand(value):
                    push(target)
            elif _passes(kind, operand, value, pending):
                push(target)
    return matched


def _passes(kind: int, operand: Any, value: Any, more: list[Program]) -> bool:
    """Whether a leaf passes the one operator of an entry (COLLECT: adds the targets itself).
    The walk tests the commonest kinds itself."""
    if kind == SUFFIX:
        return type(value) is str and value.endswith(operand)
    if kind == CIDR:
        address = ip_number(value) if type(value) is str else None
        return (
            address is not None
            and address[0] == operand[0]
            and operand[1] <= address[1] <= operand[2]
        )
    if kind == EXISTS:
        return True
    assert kind == COLLECT, kind
    operand(value, more)
    return False
