"""The value tests a pattern field can hold: one class per EventBridge operator.

Each operator tests one leaf value (`test`), describes itself for `explain` (`describe`), has a
hashable `key` (equal operators share index entries) and names the `index` family the Matcher
files it under ("scan" for those that no dict or sorted structure can look up).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any, ClassVar

from ondo.patterns.values import is_number, show, value_key
from ondo.patterns.wildcards import wildcard_regex

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
        self.key = ("exact", type(self.lookup).__name__, self.lookup)

    def test(self, value: Any) -> bool:
        found = value_key(value)
        return found is self.lookup or (type(found) is type(self.lookup) and found == self.lookup)

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

    __slots__ = ("regex", "text", "tokens")

    def __init__(self, text: str, tokens: list[str | int]) -> None:
        self.text = text
        self.tokens = tokens
        self.regex = wildcard_regex(tokens)
        self.key = ("wildcard", text)

    def test(self, value: Any) -> bool:
        return type(value) is str and self.regex.fullmatch(value) is not None

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

    __slots__ = ("network", "text")
    index = "cidr"

    def __init__(self, text: str, network: IPNetwork) -> None:
        self.text = text
        self.network = network
        self.key = ("cidr", network.version, int(network.network_address), network.prefixlen)

    def test(self, value: Any) -> bool:
        address = parse_ip(value)
        return address is not None and address in self.network

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

    __slots__ = ("excluded", "label")

    def __init__(self, excluded: tuple[Operator, ...], label: str) -> None:
        self.excluded = excluded
        self.label = label
        self.key = ("anything-but", frozenset(op.key for op in excluded))

    def test(self, value: Any) -> bool:
        return not any(op.test(value) for op in self.excluded)

    def describe(self) -> str:
        return f"anything-but {self.label}"


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a string holds, or None."""
    if type(value) is not str:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
