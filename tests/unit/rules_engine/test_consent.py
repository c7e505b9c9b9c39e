"""Consent on a real Platform (manual clock, SQLite store): a rule about a data subject needs the
subject's grant when it is created and each time it fires; fields a grant does not let through
never reach the grantee's actions; revoking disables the rules that needed the grant."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ondo.backends.store.repositories.grants import Grant
from ondo.backends.store.repositories.tokens import Principal, Role, User
from ondo.errors import Forbidden, NotFound, ValidationError
from ondo.notices import RULE_DISABLED, Notice
from ondo.security.consent import NO_CONSENT
from ondo.security.grants import expiry, parse_request
from tests.unit.rules_engine.conftest import Harness

NS = "clinic"
BP = "on health.blood_pressure about alice where systolic > 140 do emit alert.bp"
ANYONE = "on health.blood_pressure where systolic > 140 do emit alert.bp"


def user(h: Harness, name: str, role: Role) -> Principal:
    record = User(NS, name, role, "user", 0.0, "admin")
    h.run(lambda: h.platform.store.repos.tokens.put_user(record))
    return Principal(name, NS, role)


def give(h: Harness, subject: Principal, body: dict[str, Any]) -> Grant:
    wanted = parse_request(body, h.clock.now())
    return h.run(lambda: h.platform.grants.give(subject, NS, wanted))


def define(h: Harness, owner: str, text: str, name: str) -> None:
    book = h.platform.rules.book
    h.run(lambda: book.add(book.prepare(NS, owner, name=name, text=text)))


def reading(h: Harness, subject: str | None, systolic: int = 150, **data: Any) -> list[Any]:
    attrs: dict[str, Any] = {"data": {"systolic": systolic, **data}}
    if subject is not None:
        attrs["subject"] = subject
    return h.run(lambda: h.send("health.blood_pressure", NS, **attrs))


def outcome(records: list[Any], rule: str) -> tuple[str, str, str]:
    (rec,) = [r for r in records if r.rule == rule]
    return rec.outcome, rec.grant, rec.detail


def job_data(h: Harness, rule: str) -> list[Any]:
    return [json.loads(j["request"])["event"]["data"] for j in h.jobs(rule)]


@pytest.fixture
def clinic(harness: Harness) -> tuple[Principal, Principal]:
    return user(harness, "alice", "citizen"), user(harness, "bob", "developer")


def test_bob_may_write_his_rule_about_alice_only_once_she_granted_it(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    with pytest.raises(Forbidden) as refused:
        define(harness, "bob", BP, "bp")
    assert "about alice" in str(refused.value)
    assert "ondo grants add --to bob --types 'health.blood_pressure'" in str(refused.value)
    give(harness, alice, {"to": "bob", "types": ["diet.*"]})  # not the right types
    with pytest.raises(Forbidden):
        define(harness, "bob", BP, "bp")
    grant = give(harness, alice, {"to": "bob", "types": ["health.*"], "purpose": "my GP"})
    define(harness, "bob", BP, "bp")
    assert outcome(reading(harness, "alice"), "bp")[:2] == ("fired", grant.id)
    define(harness, "alice", BP, "mine")  # her own rule: no grant needed
    define(harness, "admin", BP, "admins")  # the platform admin's
    user(harness, "nora", "admin")  # and a namespace admin's
    define(harness, "nora", BP, "noras")
    records = reading(harness, "alice")
    assert {r.rule: (r.outcome, r.grant) for r in records} == {
        "bp": ("fired", grant.id),
        "mine": ("fired", ""),
        "admins": ("fired", ""),
        "noras": ("fired", ""),
    }


def test_a_rule_without_about_fires_only_for_subjects_who_granted_its_owner(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    user(harness, "carol", "citizen")
    define(harness, "bob", ANYONE, "anyone")  # no named subject: checked at each firing
    grant = give(harness, alice, {"to": "bob", "types": ["health.blood_pressure"]})
    assert outcome(reading(harness, "alice"), "anyone")[:2] == ("fired", grant.id)
    refused, none, why = outcome(reading(harness, "carol"), "anyone")
    assert (refused, none) == (NO_CONSENT, "")
    assert "about carol" in why and "ondo grants add --to bob" in why
    # a subject nobody in the namespace is named after, and an event without a subject
    assert outcome(reading(harness, "sensor-7"), "anyone")[:2] == ("fired", "")
    assert outcome(reading(harness, None), "anyone")[:2] == ("fired", "")
    assert len(harness.jobs("anyone")) == 3


def test_an_expired_grant_stops_the_rule_at_its_next_firing(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    give(harness, alice, {"to": "bob", "types": ["health.*"], "expires": "1h"})
    define(harness, "bob", BP, "bp")
    assert outcome(reading(harness, "alice"), "bp")[0] == "fired"
    harness.clock.advance(3601)
    refused, _grant, why = outcome(reading(harness, "alice"), "bp")
    assert refused == NO_CONSENT and "expired" in why
    assert len(harness.jobs("bp")) == 1
    with pytest.raises(Forbidden):  # and it cannot be written again
        define(harness, "bob", BP.replace("alert.bp", "alert.x"), "bp2")


def test_a_grant_with_fields_lets_only_those_reach_the_actions(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    give(harness, alice, {"to": "bob", "types": ["health.*"], "fields": ["systolic", "v.pulse"]})
    define(harness, "bob", BP, "bp")
    define(harness, "admin", BP, "admins")
    reading(harness, "alice", 150, diastolic=85, v={"pulse": 72, "spo2": 97}, note="tired")
    assert job_data(harness, "bp") == [{"systolic": 150, "v": {"pulse": 72}}]
    full = {"systolic": 150, "diastolic": 85, "v": {"pulse": 72, "spo2": 97}, "note": "tired"}
    assert job_data(harness, "admins") == [full]


def test_revoking_disables_the_rules_that_needed_the_grant_and_tells_their_owner(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, bob = clinic
    heard: list[Notice] = []
    harness.platform.notices.subscribe(NS, heard.append)
    grant = give(harness, alice, {"to": "bob", "types": ["health.*"]})
    define(harness, "bob", BP, "bp")
    define(harness, "bob", ANYONE, "anyone")
    grants = harness.platform.grants
    with pytest.raises(Forbidden):  # the grantee may not revoke it
        harness.run(lambda: grants.revoke(bob, NS, grant.id))
    with pytest.raises(NotFound):  # a stranger does not learn it exists
        harness.run(lambda: grants.revoke(Principal("eve", NS, "citizen"), NS, grant.id))
    revoked, disabled = harness.run(lambda: grants.revoke(alice, NS, grant.id))
    assert revoked.revoked_at is not None
    assert [d.rule.name for d in disabled] == ["bp"]  # "anyone" names no subject: it stays
    stored = harness.platform.rules.book.stored_rule(NS, "bp")
    assert stored is not None and not stored.enabled
    assert stored.disabled_reason is not None and "alice revoked" in stored.disabled_reason
    (notice,) = [n for n in heard if n.type == RULE_DISABLED]
    assert notice.data["owner"] == "bob" and notice.data["rule"] == "bp"
    records = reading(harness, "alice")
    assert [r.rule for r in records] == ["anyone"] and records[0].outcome == NO_CONSENT
    assert len(harness.jobs("bp")) == 0
    book = harness.platform.rules.book
    with pytest.raises(Forbidden):  # bob cannot switch it on again without a new grant
        harness.run(lambda: book.set_enabled(NS, "bp", True))
    entries = harness.run(lambda: harness.platform.store.repos.audit.chain(0, 100))
    assert any(e.record.action == "rule.disabled" and e.record.about == "alice" for e in entries)


def test_another_live_grant_keeps_the_rule(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    first = give(harness, alice, {"to": "bob", "types": ["health.*"]})
    give(harness, alice, {"to": "bob", "types": ["health.blood_pressure"]})
    define(harness, "bob", BP, "bp")
    _, disabled = harness.run(lambda: harness.platform.grants.revoke(alice, NS, first.id))
    assert disabled == []
    assert outcome(reading(harness, "alice"), "bp")[0] == "fired"


def test_grant_requests_are_checked() -> None:
    now = 1_000_000.0
    assert expiry("1d", now) == now + 86400
    midnight = datetime(2027, 1, 31, tzinfo=UTC).timestamp()
    assert expiry("2027-01-31", now) == midnight
    assert expiry("2027-01-31T01:00:00+01:00", now) == midnight
    assert expiry(None, now) is None
    for bad in ("yesterday", "1970-01-02", -5, True):
        with pytest.raises(ValidationError, match="expires"):
            expiry(bad, now)
    wanted = parse_request({"to": "bob", "types": "health.*, diet.meal", "fields": ["a.b"]}, now)
    assert wanted.types == ("health.*", "diet.meal") and wanted.fields == ("a.b",)
    for body in (
        {"to": "Bob!", "types": ["x"]},
        {"to": "bob", "types": []},
        {"to": "bob", "types": ["x y"]},
        {"to": "bob", "types": ["x"], "fields": ["a..b"]},
        {"to": "bob", "types": ["x"], "extra": 1},
    ):
        with pytest.raises(ValidationError):
            parse_request(body, now)


def test_a_for_timer_asks_again_when_it_falls_due(
    harness: Harness, clinic: tuple[Principal, Principal]
) -> None:
    alice, _bob = clinic
    grant = give(harness, alice, {"to": "bob", "types": ["health.*"], "expires": "30m"})
    held = "on health.blood_pressure where systolic > 140 for 1h do emit alert.bp"
    define(harness, "bob", held, "held")
    assert outcome(reading(harness, "alice"), "held")[:2] == ("timer started", grant.id)
    harness.clock.advance(3601)  # the timer is due; the grant ended half an hour ago
    harness.run(harness.platform.rules.fire_due_timers)
    records = harness.run(lambda: harness.platform.rules.log.for_rule(NS, "held"))
    timer = [r for r in records if r.stage == "timer"]
    assert [(r.outcome, r.grant) for r in timer] == [(NO_CONSENT, "")]
    assert "expired" in timer[0].detail and harness.jobs("held") == []
