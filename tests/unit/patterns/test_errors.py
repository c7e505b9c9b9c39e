"""Invalid patterns raise PatternError whose message names the path and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from ondo.api.errors import status_of
from ondo.errors import OndoError
from ondo.patterns import Matcher, PatternError, compile

INVALID: list[tuple[Any, str]] = [
    (
        {"data": {"systolic": [{"numeric": [">", "140"]}]}},
        'data.systolic: numeric needs an operator and a number, got ">", "140"',
    ),
    (
        {"n": [{"numeric": [">", 0, "<"]}]},
        'n: numeric needs an operator and a number, got ">", 0, "<"',
    ),
    ({"n": [{"numeric": 10}]}, "n: numeric needs an operator and a number, got 10"),
    ({"n": [{"numeric": ["~", 1]}]}, "n: numeric needs an operator"),
    ({"n": [{"numeric": [">", 0, ">", 1]}]}, "n: a numeric range needs one lower bound"),
    (
        {"n": [{"numeric": [">", 5, "<", 5]}]},
        "n: numeric range is empty: lower bound 5 is not below upper bound 5",
    ),
    ({"n": [{"numeric": ["=", 5, "<", 6]}]}, 'n: numeric "=" cannot be combined'),
    ({"n": [{"numeric": [">", True]}]}, "n: numeric needs an operator and a number"),
    ({"s": "x"}, 's: values must be in a list, got "x"; write ["x"]'),
    ({"d": {"n": 42}}, "d.n: values must be in a list, got 42"),
    ({"s": []}, "s: an empty list matches nothing"),
    ({"d": {}}, "d: an empty object matches nothing"),
    ({}, "pattern is empty"),
    ([], "pattern must be a JSON object"),
    ("{not json", "pattern is not valid JSON"),
    ({"s": [["a"]]}, "s: a value list cannot hold a list"),
    ({"s": [{"EXISTS": True}]}, 's: unknown operator "EXISTS"'),
    ({"s": [{"EXISTS": True}]}, "operator names are lower-case"),
    ({"s": [{"regex": "a"}]}, 's: unknown operator "regex"'),
    ({"s": [{"prefix": "a", "suffix": "b"}]}, "s: an operator object holds exactly one operator"),
    ({"s": [{"prefix": 1}]}, "s: prefix needs a string"),
    ({"s": [{"prefix": ["a"]}]}, "s: prefix needs a string"),
    ({"s": [{"suffix": {"prefix": "a"}}]}, "s: suffix needs a string"),
    ({"s": [{"equals-ignore-case": ["a"]}]}, "s: equals-ignore-case needs a string"),
    ({"s": [{"exists": "yes"}]}, "s: exists needs true or false"),
    ({"s": [{"cidr": "bad"}]}, 's: cidr needs an IP address or network such as "10.0.0.0/24"'),
    ({"s": [{"cidr": "10.0.0.0/33"}]}, "s: cidr needs"),
    ({"s": [{"cidr": ["10.0.0.0/8"]}]}, "s: cidr needs a string"),
    ({"s": [{"wildcard": "a**b"}]}, 's: wildcard "a**b": consecutive wildcard characters'),
    ({"s": [{"wildcard": "a\\b"}]}, "must escape '*' or '\\'"),
    ({"s": [{"wildcard": 1}]}, "s: wildcard needs a string"),
    ({"s": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}, "s: wildcard pattern is too complex"),
    ({"s": [{"anything-but": None}]}, "s: anything-but needs a string, a number"),
    ({"s": [{"anything-but": True}]}, "s: anything-but needs"),
    ({"s": [{"anything-but": []}]}, "s: anything-but needs"),
    ({"s": [{"anything-but": ["a", None]}]}, "s: anything-but needs"),
    ({"s": [{"anything-but": ["a", 1]}]}, "list of only strings or only numbers"),
    ({"s": [{"anything-but": {"prefix": ""}}]}, "s: anything-but prefix needs a non-empty string"),
    ({"s": [{"anything-but": {"suffix": [".a", ""]}}]}, "anything-but suffix needs a non-empty"),
    (
        {"s": [{"anything-but": {"prefix": {"equals-ignore-case": "a"}}}]},
        "anything-but prefix needs",
    ),
    ({"s": [{"anything-but": {"equals-ignore-case": 1}}]}, "anything-but equals-ignore-case needs"),
    ({"s": [{"anything-but": {"wildcard": [1]}}]}, "anything-but wildcard needs"),
    ({"s": [{"anything-but": {"numeric": [">", 1]}}]}, "s: anything-but takes one of"),
    ({"d": {"$or": [{"a": [1]}]}}, "d.$or: needs at least two alternatives"),
    ({"$or": [{"a": [1]}, "b"]}, "$or[1]: each alternative must be a non-empty object"),
]


@pytest.mark.parametrize(("pattern", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_pattern_message(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile(pattern)
    assert message in str(caught.value)


def test_pattern_error_is_a_value_error_and_an_ondo_error() -> None:
    with pytest.raises(ValueError):
        compile({"s": "x"})
    assert issubclass(PatternError, OndoError)
    assert status_of(PatternError("x")) == 400
    assert PatternError.code == "invalid_pattern"


def test_too_many_or_combinations_are_rejected() -> None:
    ors = {f"f{i}": {"$or": [{"a": [1]}, {"b": [2]}, {"c": [3]}]} for i in range(7)}
    with pytest.raises(PatternError, match="more than 1000 combinations"):
        compile(ors)


def test_matcher_add_rejects_invalid_and_keeps_the_old_rule() -> None:
    matcher = Matcher()
    matcher.add("r", {"s": ["a"]})
    with pytest.raises(PatternError):
        matcher.add("r", {"s": "b"})
    assert matcher.matching({"s": "a"}) == {"r"}


@pytest.mark.parametrize(
    "wildcard",
    [
        "arn:aws:events:us-east-1:*:event-bus/*",
        "/Users/*/dir/dir/dir/dir/dir/doc.txt",
        "*.png",
        "a*b*c*",
    ],
)
def test_reasonable_wildcards_are_accepted(wildcard: str) -> None:
    compile({"s": [{"wildcard": wildcard}]})


def test_wildcard_complexity_counts_all_wildcards_on_one_field() -> None:
    compile({"s": [{"wildcard": "*a*b*"}]})
    with pytest.raises(PatternError, match="too complex"):
        compile({"s": [{"wildcard": "*a*b*"}, {"wildcard": "*c*d*"}, {"wildcard": "*e*f*"}]})
