"""The bounded JSON decoder every endpoint uses: limits are exact and errors name them."""

from __future__ import annotations

import pytest

from ondo import boundedjson
from ondo.boundedjson import JsonLimits
from ondo.errors import InputLimitExceeded, PayloadTooLarge, ValidationError

LIMITS = JsonLimits(max_bytes=10_000, max_depth=5, max_int_digits=10)


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "[1]" + "}" * (depth - 1)


def test_depth_up_to_the_limit_is_read_and_one_more_is_refused() -> None:
    assert boundedjson.loads(nested(5), limits=LIMITS) is not None
    with pytest.raises(InputLimitExceeded, match=r"deeper than 5 levels .*depth limit"):
        boundedjson.loads(nested(6), limits=LIMITS)


def test_a_wide_document_with_many_brackets_is_not_mistaken_for_a_deep_one() -> None:
    assert len(boundedjson.loads("[" + ",".join(["[[1]]"] * 50) + "]", limits=LIMITS)) == 50


def test_nesting_past_the_recursion_limit_is_the_depth_error() -> None:
    with pytest.raises(InputLimitExceeded, match="depth limit"):
        boundedjson.loads("[" * 100_000 + "]" * 100_000, limits=JsonLimits(max_bytes=None))


@pytest.mark.parametrize("sign", ["", "-"])
def test_integers_up_to_the_digit_limit_are_read_and_longer_ones_refused(sign: str) -> None:
    assert boundedjson.loads(f"[{sign}{'9' * 10}]", limits=LIMITS) == [int(sign + "9" * 10)]
    with pytest.raises(InputLimitExceeded, match="integer of 11 digits; the limit is 10"):
        boundedjson.loads(f"[{sign}{'9' * 11}]", limits=LIMITS)


def test_python_own_digit_limit_is_never_a_bare_value_error() -> None:
    with pytest.raises(InputLimitExceeded, match="integer limit"):
        boundedjson.loads("[" + "7" * 5000 + "]")


def test_long_digit_runs_in_strings_and_fractions_are_fine() -> None:
    assert boundedjson.loads(f'["{"1" * 50}"]', limits=LIMITS) == ["1" * 50]
    assert boundedjson.loads(f"[0.{'1' * 50}]", limits=LIMITS)[0] == pytest.approx(1 / 9)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused(constant: str) -> None:
    with pytest.raises(ValidationError, match=f"contains {constant}, which is not a JSON number"):
        boundedjson.loads(f"[{constant}]")


def test_size_syntax_and_encoding() -> None:
    with pytest.raises(PayloadTooLarge, match="10001 bytes; the limit is 10000"):
        boundedjson.loads(b" " * 10_001, limits=LIMITS)
    with pytest.raises(ValidationError, match="line 1 column 2"):
        boundedjson.loads(b"[}", "event")
    with pytest.raises(ValidationError, match="is empty"):
        boundedjson.loads(b"  ")
    with pytest.raises(ValidationError, match="not UTF-8"):
        boundedjson.loads(b'["\xff"]')
    assert boundedjson.loads('{"a": "é"}'.encode("utf-16")) == {"a": "é"}
