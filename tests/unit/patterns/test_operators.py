"""One table of (pattern, event, expected) per operator, checked on compile() and on Matcher."""

from __future__ import annotations

from typing import Any

import pytest

from ondo.patterns import Matcher, compile
from ondo.patterns.operators import ip_number, parse_ip

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # exact values
    ("string", {"type": ["a.b"]}, {"type": "a.b"}, True),
    ("string other", {"type": ["a.b"]}, {"type": "a.c"}, False),
    ("string is not number", {"n": ["5"]}, {"n": 5}, False),
    ("int matches float", {"n": [5]}, {"n": 5.0}, True),
    ("float matches int", {"n": [2.5, 3.0]}, {"n": 3}, True),
    ("true is not 1", {"n": [1]}, {"n": True}, False),
    ("1 is not true", {"b": [True]}, {"b": 1}, False),
    ("false", {"b": [False]}, {"b": False}, True),
    ("0 is not false", {"b": [False]}, {"b": 0}, False),
    ("null", {"x": [None]}, {"x": None}, True),
    ("null is not missing", {"x": [None]}, {}, False),
    ("null is not the string", {"x": [None]}, {"x": "null"}, False),
    ("empty string", {"x": [""]}, {"x": ""}, True),
    ("several values any", {"x": ["a", "b"]}, {"x": "b"}, True),
    ("event array any element", {"x": ["b"]}, {"x": ["a", "b"]}, True),
    ("object is not a leaf", {"x": ["a"]}, {"x": {"y": "a"}}, False),
    ("nested", {"data": {"p": {"q": [1]}}}, {"data": {"p": {"q": 1}}}, True),
    ("keys are case-sensitive", {"Type": ["a"]}, {"type": "a"}, False),
    # prefix / suffix / equals-ignore-case
    ("prefix", {"t": [{"prefix": "com.acme."}]}, {"t": "com.acme.x"}, True),
    ("prefix no", {"t": [{"prefix": "com.acme."}]}, {"t": "com.acm"}, False),
    ("prefix whole", {"t": [{"prefix": "abc"}]}, {"t": "abc"}, True),
    ("prefix empty", {"t": [{"prefix": ""}]}, {"t": "x"}, True),
    ("prefix not number", {"t": [{"prefix": "1"}]}, {"t": 12}, False),
    ("prefix case", {"t": [{"prefix": "ABC"}]}, {"t": "abcd"}, False),
    ("prefix ic", {"t": [{"prefix": {"equals-ignore-case": "ABC"}}]}, {"t": "abCd"}, True),
    ("suffix", {"f": [{"suffix": ".png"}]}, {"f": "a.png"}, True),
    ("suffix no", {"f": [{"suffix": ".png"}]}, {"f": "a.PNG"}, False),
    ("suffix ic", {"f": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"f": "a.png"}, True),
    ("suffix empty", {"f": [{"suffix": ""}]}, {"f": ""}, True),
    ("eic", {"s": [{"equals-ignore-case": "Open"}]}, {"s": "oPEN"}, True),
    ("eic no", {"s": [{"equals-ignore-case": "Open"}]}, {"s": "opened"}, False),
    # wildcard
    ("wildcard", {"p": [{"wildcard": "/u/*/x.txt"}]}, {"p": "/u/a/b/x.txt"}, True),
    ("wildcard no", {"p": [{"wildcard": "/u/*/x.txt"}]}, {"p": "/u/a/y.txt"}, False),
    ("wildcard empty star", {"p": [{"wildcard": "a*b"}]}, {"p": "ab"}, True),
    ("wildcard escaped star", {"p": [{"wildcard": "a\\*b"}]}, {"p": "a*b"}, True),
    ("wildcard escaped star literal", {"p": [{"wildcard": "a\\*b"}]}, {"p": "axb"}, False),
    ("wildcard regex chars literal", {"p": [{"wildcard": "a.b*"}]}, {"p": "aXb"}, False),
    ("wildcard newline", {"p": [{"wildcard": "a*"}]}, {"p": "a\nb"}, True),
    # numeric
    ("numeric >", {"n": [{"numeric": [">", 140]}]}, {"n": 141}, True),
    ("numeric > edge", {"n": [{"numeric": [">", 140]}]}, {"n": 140}, False),
    ("numeric >= edge", {"n": [{"numeric": [">=", 140]}]}, {"n": 140.0}, True),
    ("numeric < ", {"n": [{"numeric": ["<", 0]}]}, {"n": -0.5}, True),
    ("numeric <= edge", {"n": [{"numeric": ["<=", 0]}]}, {"n": 0}, True),
    ("numeric =", {"n": [{"numeric": ["=", 3.5]}]}, {"n": 3.5}, True),
    ("numeric range in", {"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5}, True),
    ("numeric range out", {"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 0}, False),
    ("numeric range reversed order", {"n": [{"numeric": ["<", 5, ">=", 1]}]}, {"n": 1}, True),
    ("numeric not string", {"n": [{"numeric": [">", 0]}]}, {"n": "5"}, False),
    ("numeric not bool", {"n": [{"numeric": [">", 0]}]}, {"n": True}, False),
    ("numeric not null", {"n": [{"numeric": [">", 0]}]}, {"n": None}, False),
    # cidr
    ("cidr", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
    ("cidr out", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
    ("cidr not ip", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.300"}, False),
    ("cidr bare address", {"ip": [{"cidr": "10.0.0.1"}]}, {"ip": "10.0.0.1"}, True),
    ("cidr bare address other", {"ip": [{"cidr": "10.0.0.1"}]}, {"ip": "10.0.0.2"}, False),
    ("cidr v6 long form", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:0db8:0:0::1"}, True),
    ("cidr v4 vs v6", {"ip": [{"cidr": "0.0.0.0/0"}]}, {"ip": "::1"}, False),
    ("cidr host bits", {"ip": [{"cidr": "10.0.0.9/24"}]}, {"ip": "10.0.0.200"}, True),
    # exists
    ("exists", {"x": [{"exists": True}]}, {"x": None}, True),
    ("exists missing", {"x": [{"exists": True}]}, {"y": 1}, False),
    ("exists object", {"x": [{"exists": True}]}, {"x": {"y": 1}}, False),
    ("exists empty list", {"x": [{"exists": True}]}, {"x": []}, False),
    ("not exists", {"x": [{"exists": False}]}, {"y": 1}, True),
    ("not exists present", {"x": [{"exists": False}]}, {"x": 0}, False),
    ("not exists under object", {"x": [{"exists": False}]}, {"x": {"y": 1}}, True),
    ("not exists or value", {"x": ["a", {"exists": False}]}, {"x": "a"}, True),
    # anything-but
    ("ab string", {"s": [{"anything-but": "init"}]}, {"s": "run"}, True),
    ("ab string same", {"s": [{"anything-but": "init"}]}, {"s": "init"}, False),
    ("ab null value", {"s": [{"anything-but": "init"}]}, {"s": None}, True),
    ("ab missing", {"s": [{"anything-but": "init"}]}, {}, False),
    ("ab number vs string", {"s": [{"anything-but": 5}]}, {"s": "5"}, True),
    ("ab number float", {"s": [{"anything-but": [5, 6]}]}, {"s": 5.0}, False),
    ("ab any array element", {"s": [{"anything-but": "a"}]}, {"s": ["a", "b"]}, True),
    ("ab prefix", {"s": [{"anything-but": {"prefix": "us-"}}]}, {"s": "eu-1"}, True),
    ("ab prefix same", {"s": [{"anything-but": {"prefix": "us-"}}]}, {"s": "us-1"}, False),
    ("ab prefix list", {"s": [{"anything-but": {"prefix": ["a", "b"]}}]}, {"s": "bx"}, False),
    ("ab suffix", {"s": [{"anything-but": {"suffix": ".png"}}]}, {"s": "a.jpg"}, True),
    ("ab eic", {"s": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]}, {"s": "b"}, False),
    ("ab wildcard", {"s": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"s": "a/lib/b"}, False),
    ("ab wildcard no", {"s": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"s": "a/b"}, True),
    # paths with dots
    ("dotted pattern key", {"a.b": ["x"]}, {"a": {"b": "x"}}, True),
    ("dotted event key", {"a": {"b": ["x"]}}, {"a.b": "x"}, True),
    ("dotted both", {"a": {"b.c": ["x"]}}, {"a.b": {"c": "x"}}, True),
    # $or
    ("or first", {"$or": [{"a": [1]}, {"b": [2]}]}, {"a": 1}, True),
    ("or second", {"$or": [{"a": [1]}, {"b": [2]}]}, {"b": 2}, True),
    ("or none", {"$or": [{"a": [1]}, {"b": [2]}]}, {"a": 2, "b": 1}, False),
    (
        "or nested",
        {"d": {"$or": [{"a": [1]}, {"b": [2]}]}, "t": ["x"]},
        {"t": "x", "d": {"b": 2}},
        True,
    ),
    (
        "or and field",
        {"d": {"$or": [{"a": [1]}, {"b": [2]}]}, "t": ["x"]},
        {"t": "y", "d": {"b": 2}},
        False,
    ),
    ("or named field", {"$or": ["a"]}, {"$or": "a"}, True),
    # arrays of objects: fields must match in one element
    (
        "array same element",
        {"xs": {"a": [1], "b": [2]}},
        {"xs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        True,
    ),
    (
        "array different elements",
        {"xs": {"a": [1], "b": [4]}},
        {"xs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        False,
    ),
    (
        "array with outer field",
        {"t": ["x"], "xs": {"a": [3], "b": [4]}},
        {"t": "x", "xs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
        True,
    ),
    (
        "array nested element",
        {"o": {"xs": {"a": [1]}, "ys": {"b": [2]}}},
        {"o": [{"xs": [{"a": 1}], "ys": [{"b": 2}]}, {"xs": [{"a": 0}], "ys": [{"b": 0}]}]},
        True,
    ),
    (
        "array nested different outer elements",
        {"o": {"xs": {"a": [1]}, "ys": {"b": [2]}}},
        {"o": [{"xs": [{"a": 1}], "ys": [{"b": 0}]}, {"xs": [{"a": 0}], "ys": [{"b": 2}]}]},
        False,
    ),
    ("two arrays independent", {"xs": [1], "ys": [2]}, {"xs": [0, 1], "ys": [2, 3]}, True),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_compiled_pattern(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert compile(pattern).matches(event) is expected


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_matcher_agrees(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    matcher = Matcher()
    matcher.add("rule", pattern)
    matcher.add("other", {"zzz": ["never"]})
    assert matcher.matching(event) == ({"rule"} if expected else set())


def test_json_text_last_duplicate_key_wins() -> None:
    pattern = compile('{"s": ["a"], "s": ["b"]}')
    assert pattern.matches({"s": "b"})
    assert not pattern.matches({"s": "a"})


def test_compile_accepts_a_compiled_pattern() -> None:
    pattern = compile({"s": ["a"]})
    assert compile(pattern) is pattern


ADDRESS_TEXTS = [
    *("1.2.3.4", "0.0.0.0", "255.255.255.255", "10.0.0.300", "01.2.3.4", "1.2.3.04", "00.1.1.1"),
    *("1.2.3", "1.2.3.4.5", "1..2.3", " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "0x1.2.3.4", "1.2.3.4/8"),
    *("1.2.3.4\x00", "\uff11.2.3.4", "", "::1", "2001:db8::1", "::ffff:1.2.3.4", "hello"),
]


@pytest.mark.parametrize("text", ADDRESS_TEXTS)
def test_ip_number_reads_addresses_as_the_ipaddress_module_does(text: str) -> None:
    """The quick C parse of dotted quads must accept and reject exactly what ipaddress does."""
    address = parse_ip(text)
    assert ip_number(text) == (None if address is None else (address.version, int(address)))
