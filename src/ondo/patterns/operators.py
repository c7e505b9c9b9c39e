"""The value tests a pattern field can hold: one class per EventBridge operator.

Each operator tests one leaf value (`test`), describes itself for `explain` (`describe`), has a
hashable `key` (equal operators share index entries) and names the `index` family the Matcher
files it under ("scan" for those that no dict or sorted structure can look up).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import socket
from collections.abc import Callable
from typing import Any, ClassVar

from ondo.patterns.values import is_number, show, value_key
from ondo.patterns.wildcards import Glob

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Operator:
    """One test on one leaf value."""

    __slots__ = ("key",)
    index: ClassVar[str] = "scan"
    key: tuple[Any, ...]

    def test(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Operator) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Exact(Operator):
    """Equal to a string, number (5 equals 5.0), boolean or null."""

    __slots__ = ("label", "lookup", "value")
    index = "exact"

    def __init__(self, value: Any, label: str | None = None) -> None:
        self.value = value
        self.lookup = value_key(value)
        self.label = label or show(value)
        number = is_number(value)
        self.key = ("exact", "number" if number else type(self.lookup).__name__, self.lookup)

    def test(self, value: Any) -> bool:
        return bool(value_key(value) == self.lookup)

    def describe(self) -> str:
        return self.label


class EqualsIgnoreCase(Operator):
    """A string equal to the operand regardless of case."""

    __slots__ = ("lowered", "text")
    index = "ignore_case"

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = text.lower()
        self.key = ("equals-ignore-case", self.lowered)

    def test(self, value: Any) -> bool:
        return type(value) is str and value.lower() == self.lowered

    def describe(self) -> str:
        return f"equals-ignore-case {show(self.text)}"


class Prefix(Operator):
    """A string starting with the operand (optionally ignoring case)."""

    __slots__ = ("ignore_case", "needle", "text")

    def __init__(self, text: str, ignore_case: bool = False) -> None:
        self.text = text
        self.ignore_case = ignore_case
        self.needle = text.lower() if ignore_case else text
        self.key = ("prefix", ignore_case, self.needle)

    @property
    def index(self) -> str:  # type: ignore[override]
        return "prefix_ic" if self.ignore_case else "prefix"

    def test(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        return (value.lower() if self.ignore_case else value).startswith(self.needle)

    def describe(self) -> str:
        case = " (ignoring case)" if self.ignore_case else ""
        return f"prefix {show(self.text)}{case}"


class Suffix(Operator):
    """A string ending with the operand (optionally ignoring case)."""

    __slots__ = ("ignore_case", "needle", "text")

    def __init__(self, text: str, ignore_case: bool = False) -> None:
        self.text = text
        self.ignore_case = ignore_case
        self.needle = text.lower() if ignore_case else text
        self.key = ("suffix", ignore_case, self.needle)

    @property
    def index(self) -> str:  # type: ignore[override]
        return "suffix_ic" if self.ignore_case else "suffix"

    def test(self, value: Any) -> bool:
        if type(value) is not str:
            return False
        return (value.lower() if self.ignore_case else value).endswith(self.needle)

    def describe(self) -> str:
        case = " (ignoring case)" if self.ignore_case else ""
        return f"suffix {show(self.text)}{case}"


class Wildcard(Operator):
    """A string matching a pattern where `*` stands for any run of characters."""

    __slots__ = ("glob", "text", "tokens")

    def __init__(self, text: str, tokens: list[str | int]) -> None:
        self.text = text
        self.tokens = tokens
        self.glob = Glob(tokens)
        self.key = ("wildcard", text)

    def test(self, value: Any) -> bool:
        return type(value) is str and self.glob.match(value)

    def describe(self) -> str:
        return f"wildcard {show(self.text)}"


class Numeric(Operator):
    """A number inside a range; a missing bound is infinite."""

    __slots__ = ("high", "high_inclusive", "low", "low_inclusive")
    index = "numeric"

    def __init__(self, low: float, low_inclusive: bool, high: float, high_inclusive: bool) -> None:
        self.low, self.low_inclusive = low, low_inclusive
        self.high, self.high_inclusive = high, high_inclusive
        self.key = ("numeric", low, low_inclusive, high, high_inclusive)

    def test(self, value: Any) -> bool:
        if not is_number(value):
            return False
        low, high = self.low, self.high
        if value < low or (value == low and not self.low_inclusive):
            return False
        return not (value > high or (value == high and not self.high_inclusive))

    def describe(self) -> str:
        parts = []
        if not math.isinf(self.low):
            parts.append(f"{'>=' if self.low_inclusive else '>'} {show(self.low)}")
        if not math.isinf(self.high):
            parts.append(f"{'<=' if self.high_inclusive else '<'} {show(self.high)}")
        return "numeric " + " and ".join(parts)


class Cidr(Operator):
    """A string holding an IP address inside a network (a bare address means that address)."""

    __slots__ = ("high", "low", "network", "text")
    index = "cidr"

    def __init__(self, text: str, network: IPNetwork) -> None:
        self.text = text
        self.network = network
        self.low, self.high = int(network.network_address), int(network.broadcast_address)
        self.key = ("cidr", network.version, self.low, network.prefixlen)

    def test(self, value: Any) -> bool:
        address = ip_number(value) if type(value) is str else None
        return (
            address is not None
            and address[0] == self.network.version
            and self.low <= address[1] <= self.high
        )

    def describe(self) -> str:
        return f"cidr {show(self.text)}"


class Exists(Operator):
    """Any leaf value at all, null included."""

    __slots__ = ()
    index = "exists"

    def __init__(self) -> None:
        self.key = ("exists",)

    def test(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "exists"


class AnythingBut(Operator):
    """Any leaf value (null, other types included) that the inner operators do not match."""

    __slots__ = ("excluded", "label", "matches_inner")

    def __init__(self, excluded: tuple[Operator, ...], label: str) -> None:
        self.excluded = excluded
        self.label = label
        self.key = ("anything-but", frozenset(op.key for op in excluded))
        self.matches_inner = _any_of(excluded)

    def test(self, value: Any) -> bool:
        return not self.matches_inner(value)

    def describe(self) -> str:
        return f"anything-but {self.label}"


def _any_of(operators: tuple[Operator, ...]) -> Callable[[Any], bool]:
    """One test for "any of these operators passes", specialised for the forms anything-but
    takes (all exact, all prefixes, all suffixes, ...), since it runs for most values."""
    if len(operators) == 1 and not isinstance(operators[0], Exact):
        return operators[0].test  # e.g. one wildcard: no generator around its test
    if all(isinstance(op, Exact) for op in operators):
        keys = frozenset(op.lookup for op in operators if isinstance(op, Exact))
        return lambda value: value_key(value) in keys
    if all(isinstance(op, Prefix | Suffix) and not op.ignore_case for op in operators):
        needles = tuple(op.needle for op in operators if isinstance(op, Prefix | Suffix))
        if isinstance(operators[0], Prefix):
            return lambda value: type(value) is str and value.startswith(needles)
        return lambda value: type(value) is str and value.endswith(needles)
    if all(isinstance(op, EqualsIgnoreCase) for op in operators):
        lowered = frozenset(op.lowered for op in operators if isinstance(op, EqualsIgnoreCase))
        return lambda value: type(value) is str and value.lower() in lowered
    return lambda value: any(op.test(value) for op in operators)


@functools.lru_cache(maxsize=256)  # one event often meets the same address at many states
def ip_number(text: str) -> tuple[int, int] | None:
    """(IP version, address as an integer) for a string holding an IP address, else None."""
    try:  # the common case, parsed in C: four decimal octets, no leading zeros, each <= 255
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: an embedded NUL
        pass
    address = parse_ip(text)
    return None if address is None else (address.version, int(address))


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a string holds, or None."""
    if type(value) is not str:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
