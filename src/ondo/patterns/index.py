"""Per-path value indexes of the Matcher: from one leaf value to the targets whose tests it passes.

Exact values and equals-ignore-case are dict look-ups; prefixes and suffixes are found by one
bisect in a sorted list plus a short chain of shorter ones; numeric ranges and CIDR blocks are
elementary intervals found by bisect; wildcards are filed like prefixes (or suffixes) under
their literal start (or end) and only those that fit are tried; anything-but over exact values
is found by what it excludes. Only other anything-but forms are tested one by one, and only
those registered at this path in this state of the machine. An index holding many operators
remembers recent string values. (The walk of plain events reads a compiled form of the machine
instead, see program.py; these indexes serve it where many operators share a path, and serve
the walk of events with arrays.)
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any, Generic, TypeVar

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
    ip_number,
)
from ondo.patterns.values import value_key

T = TypeVar("T")


Interval = tuple[float, bool, float, bool]

_MEMO_FROM = 32  # operators in one index from which string results are remembered
_MEMO_SIZE = 4096  # strings remembered per index, at most

_SCAN_BELOW = 8  # this few intervals are faster to test one by one than to index


class Intervals(Generic[T]):
    """Targets attached to numeric intervals; `collect(x)` finds those containing x.

    The interval bounds cut the line into elementary segments (each bound is a segment of its
    own, and so is each open gap between bounds); a segment tree over them holds each interval
    in O(log n) nodes, so a query is one bisect and one walk from a leaf to the root.
    """

    __slots__ = ("_entries", "_leaves", "_nodes", "_points")

    def __init__(self) -> None:
        self._entries: list[tuple[Interval, T]] = []
        self._points: list[float] = []
        self._nodes: list[list[T]] | None = None
        self._leaves = 0

    def add(self, low: float, low_in: bool, high: float, high_in: bool, target: T) -> None:
        self._entries.append(((low, low_in, high, high_in), target))
        self._nodes = None

    def remove(self, low: float, low_in: bool, high: float, high_in: bool, target: T) -> None:
        self._entries.remove(((low, low_in, high, high_in), target))
        self._nodes = None

    def __bool__(self) -> bool:
        return bool(self._entries)

    def collect(self, value: float, out: list[T]) -> None:
        if len(self._entries) < _SCAN_BELOW:
            for (low, low_in, high, high_in), target in self._entries:
                if (value > low or (value == low and low_in)) and (
                    value < high or (value == high and high_in)
                ):
                    out.append(target)
            return
        nodes = self._nodes if self._nodes is not None else self._build()
        points = self._points
        index = bisect_left(points, value)
        on_point = index < len(points) and points[index] == value
        node = self._leaves + 2 * index + (1 if on_point else 0)
        while node:
            if nodes[node]:
                out.extend(nodes[node])
            node >>= 1

    def _build(self) -> list[list[T]]:
        """Segment 2i+1 is the point p[i]; segment 2i is the open gap just below it."""
        bounds = {b for (low, _, high, _), _ in self._entries for b in (low, high)}
        points = sorted(b for b in bounds if not math.isinf(b))
        where = {point: index for index, point in enumerate(points)}
        leaves = 1
        while leaves < 2 * len(points) + 1:
            leaves *= 2
        nodes: list[list[T]] = [[] for _ in range(2 * leaves)]
        for (low, low_in, high, high_in), target in self._entries:
            first = 0 if math.isinf(low) else 2 * where[low] + (1 if low_in else 2)
            last = 2 * len(points) if math.isinf(high) else 2 * where[high] + (1 if high_in else 0)
            _cover(nodes, leaves + first, leaves + last + 1, target)
        self._points, self._leaves = points, leaves
        self._nodes = nodes  # last: a concurrent reader that sees it sees the rest
        return nodes


def _cover(nodes: list[list[T]], start: int, stop: int, target: T) -> None:
    """Attach target to the canonical segment-tree nodes of leaves [start, stop)."""
    while start < stop:
        if start & 1:
            nodes[start].append(target)
            start += 1
        if stop & 1:
            stop -= 1
            nodes[stop].append(target)
        start >>= 1
        stop >>= 1


class Affixes(Generic[T]):
    """Prefixes (or suffixes, stored reversed) found by one bisect plus a short parent chain.

    In the sorted list, the greatest entry not above a value v is either a prefix of v or
    shares with v exactly the prefixes that are in its own chain of shorter entries.
    """

    __slots__ = ("_parent", "_sorted", "_table", "suffix")

    def __init__(self, suffix: bool) -> None:
        self.suffix = suffix
        self._table: dict[str, list[T]] = {}
        self._sorted: list[str] | None = []
        self._parent: dict[str, str | None] = {}

    def add(self, text: str, target: T) -> None:
        _edit(self._table, text[::-1] if self.suffix else text, target, adding=True)
        self._sorted = None

    def remove(self, text: str, target: T) -> None:
        _edit(self._table, text[::-1] if self.suffix else text, target, adding=False)
        self._sorted = None

    def __bool__(self) -> bool:
        return bool(self._table)

    def collect(self, value: str, out: list[T]) -> None:
        keys = self._sorted if self._sorted is not None else self._build()
        if self.suffix:
            value = value[::-1]
        position = bisect_right(keys, value) - 1
        if position < 0:
            return
        parent = self._parent
        candidate: str | None = keys[position]
        while candidate is not None and not value.startswith(candidate):
            candidate = parent[candidate]
        while candidate is not None:
            out.extend(self._table[candidate])
            candidate = parent[candidate]

    def collect_any(self, value: Any, out: list[T]) -> None:
        """collect() for a leaf of any type (only strings have prefixes)."""
        if type(value) is str:
            self.collect(value, out)

    def _build(self) -> list[str]:
        keys = sorted(self._table)
        chain: list[str] = []
        parent: dict[str, str | None] = {}
        for key in keys:  # a key's prefixes in the set sort right before it, nested
            while chain and not key.startswith(chain[-1]):
                chain.pop()
            parent[key] = chain[-1] if chain else None
            chain.append(key)
        self._parent = parent
        self._sorted = keys  # last: a concurrent reader that sees it sees the rest
        return keys


def _discard(table: dict[Any, list[T]], key: Any, target: T) -> None:
    targets = table[key]
    targets.remove(target)
    if not targets:
        del table[key]


class ValueIndex(Generic[T]):
    """Every operator registered at one path of one machine state, indexed by kind.

    Most indexes only ever hold exact values, so everything else lives in a separate object
    created on first use: many thousands of states stay small, and the walk can test
    `others is None` to know a dict look-up was all there was to do.
    """

    __slots__ = ("exact", "others", "size")

    def __init__(self) -> None:
        self.exact: dict[Any, Any] = {}  # value key -> one target, or a list of several
        self.others: OtherOperators[T] | None = None
        self.size = 0

    def add(self, operator: Operator, target: T) -> None:
        self.size += 1
        if isinstance(operator, Exact):
            _add_one(self.exact, operator.lookup, target)
            return
        if self.others is None:
            self.others = OtherOperators()
        self.others.edit(operator, target, adding=True)

    def remove(self, operator: Operator, target: T) -> None:
        self.size -= 1
        if isinstance(operator, Exact):
            _remove_one(self.exact, operator.lookup, target)
            return
        assert self.others is not None
        self.others.edit(operator, target, adding=False)
        if not self.others.size:
            self.others = None

    def collect(self, value: Any, out: list[T]) -> None:
        """Append the target of every operator that the leaf value passes."""
        hit = self.exact.get(value_key(value))
        if type(hit) is list:
            out.extend(hit)
        elif hit is not None:
            out.append(hit)
        if self.others is not None:
            self.others.fast(value, out)


class OtherOperators(Generic[T]):
    """The operators of one ValueIndex that are not exact values (tables made on first use)."""

    __slots__ = (
        "affixes",
        "cidr",
        "exists",
        "fast",
        "folded",
        "folding",
        "ignore_case",
        "memo",
        "negated",
        "numeric",
        "scan",
        "size",
        "tables",
        "wildcards",
    )

    def __init__(self) -> None:
        self.tables: dict[tuple[bool, bool], Affixes[T]] = {}  # (suffix?, ignore case?) ->
        self.wildcards: dict[bool, Affixes[tuple[Wildcard, T]]] = {}  # keyed by an end, see below
        self.ignore_case: dict[str, list[T]] = {}
        self.numeric: Intervals[T] | None = None
        self.cidr: dict[int, Intervals[T]] = {}
        self.exists: list[T] = []
        self.scan: list[tuple[Operator, T]] = []
        self.negated: Negated[T] | None = None  # anything-but a list of exact values
        self.size = 0
        self.affixes: list[Affixes[T]] = []  # case-sensitive prefixes and suffixes in use
        self.folded: list[Affixes[T]] = []  # case-folded ones
        self.folding = False  # whether values must be lower-cased for any look-up
        self.memo: dict[str, tuple[T, ...]] | None = None  # string -> targets, if many operators
        self.fast: Callable[[Any, list[T]], None] = self.collect  # collect, or a shortcut

    def edit(self, operator: Operator, target: T, adding: bool) -> None:
        self._apply(operator, target, adding)
        self.size += 1 if adding else -1
        tables = self.tables
        self.affixes = [tables[k] for k in ((False, False), (True, False)) if k in tables]
        self.folded = [tables[k] for k in ((False, True), (True, True)) if k in tables]
        self.folding = bool(self.folded or self.ignore_case)
        self.fast = self.collect
        self.memo = None  # any edit changes what a value collects
        tested = (self.exists, self.folding, self.cidr, self.numeric, self.scan, self.wildcards)
        others = any(tested) or self.negated is not None  # anything but case-sensitive prefixes
        if self.size >= _MEMO_FROM:  # a routing attribute (type, source) under many rules
            self.memo = {}
            self.fast = self.collect_memo
        elif not others and list(tables) == [(False, False)]:  # a source or type prefix
            self.fast = tables[False, False].collect_any

    def _apply(self, op: Operator, target: T, adding: bool) -> None:
        if isinstance(op, EqualsIgnoreCase):
            _edit(self.ignore_case, op.lowered, target, adding)
        elif isinstance(op, Prefix | Suffix):
            self._edit_affix(op, target, adding)
        elif isinstance(op, Numeric):
            self._edit_numeric(op, target, adding)
        elif isinstance(op, Cidr):
            self._edit_cidr(op, target, adding)
        elif isinstance(op, Exists):
            (self.exists.append if adding else self.exists.remove)(target)
        elif isinstance(op, Wildcard):
            self._edit_wildcard(op, target, adding)
        elif isinstance(op, AnythingBut) and all(isinstance(x, Exact) for x in op.excluded):
            if self.negated is None:
                self.negated = Negated()
            self.negated.edit(op, target, adding)
            if not self.negated.entries:
                self.negated = None
        else:
            (self.scan.append if adding else self.scan.remove)((op, target))

    def _edit_affix(self, op: Prefix | Suffix, target: T, adding: bool) -> None:
        kind = (isinstance(op, Suffix), op.ignore_case)
        table = self.tables.get(kind)
        if table is None:
            table = self.tables[kind] = Affixes(suffix=kind[0])
        (table.add if adding else table.remove)(op.needle, target)
        if not table:
            del self.tables[kind]

    def _edit_wildcard(self, op: Wildcard, target: T, adding: bool) -> None:
        """File a wildcard under its literal start (a value must begin with it), or under its
        literal end if it starts with `*`: only those whose end fits a value are tried."""
        glob = op.glob
        by_end = glob.starred and not glob.first
        table = self.wildcards.get(by_end)
        if table is None:
            table = self.wildcards[by_end] = Affixes(suffix=by_end)
        needle = glob.last if by_end else glob.first
        (table.add if adding else table.remove)(needle, (op, target))
        if not table:
            del self.wildcards[by_end]

    def _edit_numeric(self, op: Numeric, target: T, adding: bool) -> None:
        if self.numeric is None:
            self.numeric = Intervals()
        edit = self.numeric.add if adding else self.numeric.remove
        edit(op.low, op.low_inclusive, op.high, op.high_inclusive, target)
        if not self.numeric:
            self.numeric = None

    def _edit_cidr(self, op: Cidr, target: T, adding: bool) -> None:
        blocks = self.cidr.setdefault(op.network.version, Intervals())
        (blocks.add if adding else blocks.remove)(op.low, True, op.high, True, target)
        if not blocks:
            del self.cidr[op.network.version]

    def collect_memo(self, value: Any, out: list[T]) -> None:
        """collect(), remembering the targets of recent strings: type and source values repeat,
        and one dict look-up touches far less memory than bisecting hundreds of prefixes."""
        if type(value) is not str:
            self.collect(value, out)
            return
        memo = self.memo
        if memo is None:  # not in use any more
            self.collect(value, out)
            return
        found = memo.get(value)
        if found is None:
            targets: list[T] = []
            self.collect(value, targets)
            found = tuple(targets)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()  # values that do not repeat: start over rather than track age
            memo[value] = found
        out.extend(found)

    def collect(self, value: Any, out: list[T]) -> None:
        """Append the target of every (non-exact) operator that the leaf value passes."""
        if self.exists:
            out.extend(self.exists)
        if type(value) is str:
            for affixes in self.affixes:
                affixes.collect(value, out)
            if self.folding:
                lowered = value.lower()
                hit = self.ignore_case.get(lowered)
                if hit:
                    out.extend(hit)
                for affixes in self.folded:
                    affixes.collect(lowered, out)
            if self.cidr:
                self._collect_address(value, out)
            if self.wildcards:
                self._collect_wildcards(value, out)
        elif self.numeric is not None and (type(value) is int or type(value) is float):
            self.numeric.collect(value, out)
        for operator, target in self.scan:
            if operator.test(value):
                out.append(target)
        if self.negated is not None:
            self.negated.collect(value, out)

    def _collect_wildcards(self, value: str, out: list[T]) -> None:
        plausible: list[tuple[Wildcard, T]] = []
        for table in self.wildcards.values():
            table.collect(value, plausible)
        for operator, target in plausible:
            if operator.glob.match(value):
                out.append(target)

    def _collect_address(self, value: str, out: list[T]) -> None:
        address = ip_number(value)
        if address is not None:
            blocks = self.cidr.get(address[0])
            if blocks is not None:
                blocks.collect(address[1], out)


class Negated(Generic[T]):
    """anything-but over exact values: a value passes all of them but those that exclude it,
    found by one look-up instead of a test per operator."""

    __slots__ = ("entries", "excluders", "targets")

    def __init__(self) -> None:
        self.entries: list[tuple[AnythingBut, T]] = []
        self.targets: list[T] = []  # of every entry, for values that no entry excludes
        self.excluders: dict[Any, set[int]] = {}  # value key -> ids of the entries excluding it

    def edit(self, op: AnythingBut, target: T, adding: bool) -> None:
        if adding:
            entry = (op, target)
            self.entries.append(entry)
        else:
            entry = self.entries.pop(self.entries.index((op, target)))
        for excluded in op.excluded:
            assert isinstance(excluded, Exact)
            ids = self.excluders.setdefault(excluded.lookup, set())
            (ids.add if adding else ids.discard)(id(entry))
            if not ids:
                del self.excluders[excluded.lookup]
        self.targets = [target for _, target in self.entries]

    def collect(self, value: Any, out: list[T]) -> None:
        excluders = self.excluders.get(value_key(value))
        if excluders is None:
            out.extend(self.targets)
            return
        for entry in self.entries:
            if id(entry) not in excluders:
                out.append(entry[1])


def _add_one(table: dict[Any, Any], key: Any, target: T) -> None:
    """Map key to target, keeping one object (no list) in the common case of a single one."""
    current = table.get(key)
    if current is None:
        table[key] = target
    elif type(current) is list:
        current.append(target)
    else:
        table[key] = [current, target]


def _remove_one(table: dict[Any, Any], key: Any, target: T) -> None:
    current = table[key]
    if type(current) is not list:
        del table[key]
        return
    current.remove(target)
    if len(current) == 1:
        table[key] = current[0]


def _edit(table: dict[Any, list[T]], key: Any, target: T, adding: bool) -> None:
    if adding:
        table.setdefault(key, []).append(target)
    else:
        _discard(table, key, target)
