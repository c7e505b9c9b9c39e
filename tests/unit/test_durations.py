"""One duration parser (ondo.durations) for rules, ondo.yaml, `--since` and the CLI's clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ondo.api.routes.events import parse_since
from ondo.deploy.manifest import read_manifest
from ondo.durations import accepted_forms, parse_duration
from ondo.errors import ConfigError, DurationError, RuleError, RuleSyntaxError, ValidationError
from ondo.rules.model import CountWindow
from ondo.rules.parser import parse_rule

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("2w", 1_209_600),
        ("1.5h", 5400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("15 m", 900),
        (" 2H ", 7200),
        ("1m500ms", 60.5),
        ("0s", 0),
    ],
)
def test_every_form_is_read(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", " ", "15", "2.5", "15x", "m", "1h 30", "1e3s", "inf", "1y"])
def test_anything_else_is_refused_naming_the_text_and_the_forms(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == (f"duration {text!r} is not understood; write {accepted_forms()}")
    assert "90s, 15m, 2h, 1d or 2w" in str(caught.value) and "1h30m" in str(caught.value)


def test_plain_seconds_only_where_the_caller_accepts_them() -> None:
    assert parse_duration("2.5", bare_seconds=True) == 2.5
    assert parse_duration("90", bare_seconds=True) == 90
    assert parse_duration("2w", bare_seconds=True) == 1_209_600
    with pytest.raises(DurationError, match="or plain seconds such as 90"):
        parse_duration("soon", bare_seconds=True)
    with pytest.raises(DurationError, match="not understood"):
        parse_duration("nan", bare_seconds=True)


def test_negative_and_endless_durations_are_refused() -> None:
    with pytest.raises(DurationError, match="'-5m' is negative"):
        parse_duration("-5m")
    with pytest.raises(DurationError, match="is negative"):
        parse_duration("-5", bare_seconds=True)
    with pytest.raises(DurationError, match="too long"):
        parse_duration("9" * 400 + "s")
    with pytest.raises(DurationError) as caught:
        parse_duration("x" * 1000)
    assert len(str(caught.value)) < 400  # the text is shown cut short


def test_a_duration_error_is_a_validation_error() -> None:
    assert issubclass(DurationError, ValidationError)


def test_since_takes_the_same_durations_as_the_rules() -> None:
    """Before ondo.durations, `--since 2w` was refused while `within 2w` was accepted."""
    assert parse_since("2w", NOW).timestamp() == NOW - 1_209_600
    assert parse_since("1h30m", NOW).timestamp() == NOW - 5400
    assert parse_rule("on t 2 times within 2w do emit u").window == CountWindow(2, 1_209_600, None)
    assert parse_since("2024-01-01T00:00:00Z", NOW) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="or give a duration back from now: a number"):
        parse_since("15", NOW)


def test_rules_read_every_form_and_keep_their_column_messages() -> None:
    assert parse_rule("on t 2 times within 1h30m do emit u").window == CountWindow(2, 5400, None)
    assert parse_rule("on t 2 times within 250ms do emit u").window == CountWindow(2, 0.25, None)
    with pytest.raises(RuleSyntaxError, match=r'expected a duration, found "30" at column 21'):
        parse_rule("on t 3 times within 30 days do emit u")
    with pytest.raises(RuleSyntaxError, match=r"1h30m"):
        parse_rule("on t 3 times within soon do emit u")
    with pytest.raises(RuleError, match="duration -5m at column 22 must be more than zero"):
        parse_rule("on t where x > 1 for -5m do emit u")


def test_ondo_yaml_reads_every_form_and_names_the_line(tmp_path: Path) -> None:
    def age(value: str) -> float:
        root = tmp_path / value.replace(" ", "_").replace('"', "")
        (root / "f").mkdir(parents=True)
        (root / "f" / "app.py").write_text("def handler(e, c):\n    return e\n")
        (root / "ondo.yaml").write_text(
            f"name: a\nfunctions:\n  f:\n    code: ./f\n    async:\n      max_event_age: {value}\n"
        )
        found: float = read_manifest(root).functions["f"].config.async_max_event_age
        return found

    assert age("1h30m") == 5400
    assert age("90") == 90
    assert age('"120"') == 120
    assert age("2h") == 7200
    with pytest.raises(ConfigError, match=r"ondo.yaml:6.*duration 'soon' is not understood"):
        age("soon")
