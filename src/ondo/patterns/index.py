"""Per-path value indexes of the Matcher: from one leaf value to the targets whose tests it passes.

Exact values and equals-ignore-case are dict look-ups; prefixes and suffixes are dicts keyed by
length (one slice and one look-up per distinct length); numeric ranges and CIDR blocks are
elementary intervals found by bisect. Only wildcard and anything-but are tested one by one, and
only those registered at this path in this state of the machine.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Generic, TypeVar

from ondo.patterns.operators import (
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Numeric,
    Operator,
    Prefix,
    Suffix,
    parse_ip,
)
from ondo.patterns.values import is_number

T = TypeVar("T")


class Intervals(Generic[T]):
    """Targets attached to numeric intervals; `collect(x)` finds those containing x."""

    __slots__ = ("_entries", "_points", "_segments")

    def __init__(self) -> None:
        self._entries: list[tuple[float, bool, float, bool, T]] = []
        self._points: list[float] = []
        self._segments: list[list[T]] | None = None

    def add(self, low: float, low_in: bool, high: float, high_in: bool, target: T) -> None:
        self._entries.append((low, low_in, high, high_in, target))
        self._segments = None

    def remove(self, low: float, low_in: bool, high: float, high_in: bool, target: T) -> None:
        self._entries.remove((low, low_in, high, high_in, target))
        self._segments = None

    def __bool__(self) -> bool:
        return bool(self._entries)

    def collect(self, value: float, out: list[T]) -> None:
        segments = self._segments if self._segments is not None else self._build()
        points = self._points
        index = bisect_left(points, value)
        if index < len(points) and points[index] == value:
            out.extend(segments[2 * index + 1])
        else:
            out.extend(segments[2 * index])

    def _build(self) -> list[list[T]]:
        """Segment 2i+1 is the point p[i]; segment 2i is the open gap just below it."""
        finite = {b for low, _, high, _, _ in self._entries for b in (low, high)}
        points = sorted(b for b in finite if not math.isinf(b))
        where = {point: index for index, point in enumerate(points)}
        segments: list[list[T]] = [[] for _ in range(2 * len(points) + 1)]
        for low, low_in, high, high_in, target in self._entries:
            first = 0 if math.isinf(low) else 2 * where[low] + (1 if low_in else 2)
            last = 2 * len(points) if math.isinf(high) else 2 * where[high] + (1 if high_in else 0)
            for segment in range(first, last + 1):
                segments[segment].append(target)
        self._points, self._segments = points, segments
        return segments


class Affixes(Generic[T]):
    """Prefixes (or suffixes) grouped by length, so a value needs one slice per length."""

    __slots__ = ("_by_length", "_lengths", "suffix")

    def __init__(self, suffix: bool) -> None:
        self.suffix = suffix
        self._by_length: dict[int, dict[str, list[T]]] = {}
        self._lengths: list[int] = []

    def add(self, text: str, target: T) -> None:
        group = self._by_length.setdefault(len(text), {})
        group.setdefault(text, []).append(target)
        self._lengths = sorted(self._by_length)

    def remove(self, text: str, target: T) -> None:
        group = self._by_length[len(text)]
        _discard(group, text, target)
        if not group:
            del self._by_length[len(text)]
            self._lengths = sorted(self._by_length)

    def __bool__(self) -> bool:
        return bool(self._lengths)

    def collect(self, value: str, out: list[T]) -> None:
        size = len(value)
        by_length = self._by_length
        for length in self._lengths:
            if length > size:
                break
            part = value[size - length :] if self.suffix else value[:length]
            hit = by_length[length].get(part)
            if hit:
                out.extend(hit)


def _discard(table: dict[Any, list[T]], key: Any, target: T) -> None:
    targets = table[key]
    targets.remove(target)
    if not targets:
        del table[key]


class ValueIndex(Generic[T]):
    """Every operator registered at one path of one machine state, indexed by kind."""

    __slots__ = (
        "cidr",
        "exact",
        "exists",
        "ignore_case",
        "numeric",
        "prefix",
        "prefix_ic",
        "scan",
        "size",
        "suffix",
        "suffix_ic",
    )

    def __init__(self) -> None:
        self.exact: dict[Any, list[T]] = {}
        self.ignore_case: dict[str, list[T]] = {}
        self.prefix: Affixes[T] = Affixes(suffix=False)
        self.prefix_ic: Affixes[T] = Affixes(suffix=False)
        self.suffix: Affixes[T] = Affixes(suffix=True)
        self.suffix_ic: Affixes[T] = Affixes(suffix=True)
        self.numeric: Intervals[T] = Intervals()
        self.cidr: dict[int, Intervals[T]] = {}
        self.exists: list[T] = []
        self.scan: list[tuple[Operator, T]] = []
        self.size = 0

    def add(self, operator: Operator, target: T) -> None:
        self._apply(operator, target, adding=True)
        self.size += 1

    def remove(self, operator: Operator, target: T) -> None:
        self._apply(operator, target, adding=False)
        self.size -= 1

    def _apply(self, op: Operator, target: T, adding: bool) -> None:
        if isinstance(op, Exact):
            _edit(self.exact, op.lookup, target, adding)
        elif isinstance(op, EqualsIgnoreCase):
            _edit(self.ignore_case, op.lowered, target, adding)
        elif isinstance(op, Prefix | Suffix):
            affixes = self._affixes(op)
            (affixes.add if adding else affixes.remove)(op.needle, target)
        elif isinstance(op, Numeric):
            edit = self.numeric.add if adding else self.numeric.remove
            edit(op.low, op.low_inclusive, op.high, op.high_inclusive, target)
        elif isinstance(op, Cidr):
            self._edit_cidr(op, target, adding)
        elif isinstance(op, Exists):
            (self.exists.append if adding else self.exists.remove)(target)
        else:
            (self.scan.append if adding else self.scan.remove)((op, target))

    def _affixes(self, op: Prefix | Suffix) -> Affixes[T]:
        if isinstance(op, Prefix):
            return self.prefix_ic if op.ignore_case else self.prefix
        return self.suffix_ic if op.ignore_case else self.suffix

    def _edit_cidr(self, op: Cidr, target: T, adding: bool) -> None:
        network = op.network
        blocks = self.cidr.setdefault(network.version, Intervals())
        low, high = int(network.network_address), int(network.broadcast_address)
        (blocks.add if adding else blocks.remove)(low, True, high, True, target)
        if not blocks:
            del self.cidr[network.version]

    def collect(self, value: Any, key: Any, out: list[T]) -> None:
        """Append the target of every operator that `value` (whose value_key is `key`) passes."""
        hit = self.exact.get(key)
        if hit:
            out.extend(hit)
        if self.exists:
            out.extend(self.exists)
        if type(value) is str:
            self._collect_string(value, out)
        elif self.numeric and is_number(value):
            self.numeric.collect(value, out)
        for operator, target in self.scan:
            if operator.test(value):
                out.append(target)

    def _collect_string(self, value: str, out: list[T]) -> None:
        if self.prefix:
            self.prefix.collect(value, out)
        if self.suffix:
            self.suffix.collect(value, out)
        if self.ignore_case or self.prefix_ic or self.suffix_ic:
            lowered = value.lower()
            hit = self.ignore_case.get(lowered)
            if hit:
                out.extend(hit)
            if self.prefix_ic:
                self.prefix_ic.collect(lowered, out)
            if self.suffix_ic:
                self.suffix_ic.collect(lowered, out)
        if self.cidr:
            address = parse_ip(value)
            blocks = self.cidr.get(address.version) if address is not None else None
            if blocks is not None and address is not None:
                blocks.collect(int(address), out)


def _edit(table: dict[Any, list[T]], key: Any, target: T, adding: bool) -> None:
    if adding:
        table.setdefault(key, []).append(target)
    else:
        _discard(table, key, target)
