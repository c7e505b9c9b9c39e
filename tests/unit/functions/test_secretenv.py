"""Masking secret values in what a function leaves behind."""

from __future__ import annotations

from ondo.functions.secretenv import holds_secret, redact_json, redact_text, redaction_of


def test_short_values_are_not_masked_and_longer_ones_first() -> None:
    assert redaction_of(["abc", "pass", "password1", "pass"]) == ("password1", "pass")


def test_text_and_json_are_masked_everywhere() -> None:
    masked = redaction_of(["s3cret-value", "s3cret"])
    assert redact_text("a s3cret-value and s3cret.", masked) == "a *** and ***."
    doc = {"s3cret": ["x s3cret-value", 3, None, {"k": "s3cret"}], "n": 1.5}
    assert redact_json(doc, masked) == {"***": ["x ***", 3, None, {"k": "***"}], "n": 1.5}
    assert holds_secret(doc, masked) and holds_secret(["a", {"b": "s3cret"}], masked)
    assert not holds_secret({"a": ["b", 1, True]}, masked)
    assert redact_json("plain", ()) == "plain"
