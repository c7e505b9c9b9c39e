"""Wildcard values: the backtracking-free matcher against a regular-expression reference."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ondo.patterns import compile
from ondo.patterns.wildcards import Glob, parse_wildcard

wildcard_text = st.text(alphabet="ab*", max_size=7).filter(lambda text: "**" not in text)


def _reference(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in text), re.DOTALL)


@settings(max_examples=500, deadline=None)
@given(text=wildcard_text, value=st.text(alphabet="ab", max_size=9))
def test_glob_agrees_with_a_regular_expression(text: str, value: str) -> None:
    glob = Glob(parse_wildcard(text))
    assert glob.match(value) == (_reference(text).fullmatch(value) is not None)


def test_escaped_star_and_backslash_are_literal() -> None:
    glob = Glob(parse_wildcard("a\\*b\\\\*"))
    assert glob.match("a*b\\tail")
    assert not glob.match("axb\\tail")


def test_no_backtracking_blow_up_on_long_values() -> None:
    """A regex `.*a.*a.*a.*b` needs hours on this value; the glob answers at once."""
    pattern = compile({"s": [{"wildcard": "*a*a*a*b"}]})
    assert not pattern.matches({"s": "a" * 20_000})
    assert pattern.matches({"s": "a" * 20_000 + "b"})
