"""The six example sentences of the rule language, each to its exact RuleSpec."""

from __future__ import annotations

from ondo.actions.model import Action
from ondo.rules.model import CountWindow, SustainWindow, Throttle, parse_rule

BLOOD_PRESSURE = (
    "on health.blood_pressure about alice where systolic > 140 or diastolic > 90 "
    "do notify bob.mobile cc alice.family"
)
CLAIMS = "on insurance.claim 10 times within 30d per subject do invoke revoke-cover"
CSV = 'on object.created from ftp where key endswith ".csv" do invoke ingest-csv'
MARKS = (
    'on db.row.updated from school where table == "marks" and "mark" in changed '
    "do notify exams-office"
)
LOGIN = "on auth.login about bob do invoke open-mailbox"
HEAT = "on sensor.temperature where celsius > 30 for 10m at most once per 1h do emit alert.heat"


def test_blood_pressure_or_becomes_an_or_pattern() -> None:
    spec = parse_rule(BLOOD_PRESSURE)
    base = {"type": ["health.blood_pressure"], "subject": ["alice"]}
    assert spec.base_pattern == base
    assert spec.pattern == {
        **base,
        "$or": [
            {"data": {"systolic": [{"numeric": [">", 140]}]}},
            {"data": {"diastolic": [{"numeric": [">", 90]}]}},
        ],
    }
    assert spec.condition is None
    assert spec.window is None and spec.throttle is None
    assert spec.actions == (Action("notify", "bob.mobile", None, ("alice.family",)),)
    assert spec.text == BLOOD_PRESSURE


def test_claims_count_window_per_subject() -> None:
    spec = parse_rule(CLAIMS)
    assert spec.pattern == {"type": ["insurance.claim"]}
    assert spec.condition is None
    assert spec.window == CountWindow(count=10, within_s=30 * 86400, per="subject")
    assert spec.throttle is None
    assert spec.actions == (Action("invoke", "revoke-cover"),)


def test_csv_upload_source_and_suffix() -> None:
    spec = parse_rule(CSV)
    assert spec.pattern == {
        "type": ["object.created"],
        "source": ["ftp", {"prefix": "ftp/"}],
        "data": {"key": [{"suffix": ".csv"}]},
    }
    assert spec.condition is None
    assert spec.actions == (Action("invoke", "ingest-csv"),)


def test_marks_equality_and_array_membership_merge() -> None:
    spec = parse_rule(MARKS)
    assert spec.pattern == {
        "type": ["db.row.updated"],
        "source": ["school", {"prefix": "school/"}],
        "data": {"table": ["marks"], "changed": ["mark"]},
    }
    assert spec.condition is None
    assert spec.actions == (Action("notify", "exams-office"),)


def test_login_about_subject() -> None:
    spec = parse_rule(LOGIN)
    assert spec.pattern == {"type": ["auth.login"], "subject": ["bob"]}
    assert spec.base_pattern == spec.pattern
    assert spec.condition is None and spec.window is None
    assert spec.actions == (Action("invoke", "open-mailbox"),)


def test_heat_sustain_window_and_throttle() -> None:
    spec = parse_rule(HEAT)
    assert spec.pattern == {
        "type": ["sensor.temperature"],
        "data": {"celsius": [{"numeric": [">", 30]}]},
    }
    assert spec.base_pattern == {"type": ["sensor.temperature"]}
    assert spec.condition is None
    assert spec.window == SustainWindow(for_s=600.0, per=None)
    assert spec.throttle == Throttle(per_s=3600.0, per=None)
    assert spec.actions == (Action("emit", "alert.heat"),)
