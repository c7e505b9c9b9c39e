"""The engine's decisions on a real (unstarted) platform: windows, timers, throttles, loops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ondo.backends.bus.base import StoredEvent
from ondo.errors import Conflict, RuleError, RuleSyntaxError
from ondo.events import CloudEvent
from ondo.rules import enforcement
from tests.unit.rules_engine.conftest import Harness

HEAT = "on sensor.temperature where celsius > 30 for 10m at most once per 1h do emit alert.heat"


def test_count_window_fires_once_per_subject_and_never_twice_for_a_redelivery(
    harness: Harness,
) -> None:
    harness.add("on claim 3 times within 1h per subject do emit claim.many", name="many")

    async def body() -> list[str]:
        outcomes = []
        for i in range(3):
            for subject in ("alice", "bob"):
                if (subject, i) == ("bob", 2):
                    continue
                recs = await harness.send("claim", id=f"{subject}-{i}", subject=subject)
                outcomes.append(f"{subject}:{recs[0].outcome}")
        again = await harness.send("claim", id="alice-2", subject="alice")  # re-delivered
        outcomes.append(f"again:{again[0].outcome}")
        return outcomes

    outcomes = harness.run(body)
    assert outcomes == [
        "alice:counted",
        "bob:counted",
        "alice:counted",
        "bob:counted",
        "alice:fired",
        "again:fired",
    ]
    jobs = harness.jobs("many")
    assert len(jobs) == 1 and jobs[0]["kind"] == "emit"
    assert json.loads(jobs[0]["request"])["event"]["subject"] == "alice"
    state = harness.run(lambda: harness.platform.rules.window_state("default", "many"))
    assert state.counts == {"bob": 2}


def test_sustain_timer_fires_after_the_duration_and_is_cancelled_by_a_cool_reading(
    harness: Harness,
) -> None:
    harness.add(HEAT, name="heat")
    engine = harness.platform.rules

    async def body() -> list[str]:
        seen = [(await harness.send("sensor.temperature", id="h1", data={"celsius": 35}))[0]]
        harness.clock.advance(300)
        seen += await harness.send("sensor.temperature", id="h2", data={"celsius": 36})
        seen += await harness.send("sensor.temperature", id="c1", data={"celsius": 20})
        harness.clock.advance(400)
        assert await engine.fire_due_timers() == 0  # cancelled: nothing due
        seen += await harness.send("sensor.temperature", id="h3", data={"celsius": 31})
        harness.clock.advance(599)
        assert await engine.fire_due_timers() == 0
        harness.clock.advance(1)
        assert await engine.fire_due_timers() == 1
        return [r.outcome for r in seen]

    assert harness.run(body) == [
        enforcement.TIMER_STARTED,
        enforcement.TIMER_PENDING,
        enforcement.TIMER_CANCELLED,
        enforcement.TIMER_STARTED,
    ]
    fired = [r for r in harness.run(lambda: engine.log.for_event("h3")) if r.stage == "timer"]
    assert [r.outcome for r in fired] == [enforcement.FIRED]
    jobs = harness.jobs("heat")
    assert [j["key"] for j in jobs] == [fired[0].actions[0].idempotency_key]


def test_throttle_suppresses_a_second_firing_within_the_period(harness: Harness) -> None:
    harness.add(HEAT, name="heat")
    engine = harness.platform.rules

    async def heat_for_ten_minutes(event_id: str) -> None:
        await harness.send("sensor.temperature", id=event_id, data={"celsius": 40})
        harness.clock.advance(600)
        await engine.fire_due_timers()

    async def body() -> None:
        await heat_for_ten_minutes("a")
        await heat_for_ten_minutes("b")  # 10 min after the first firing: suppressed
        harness.clock.advance(3600)
        await heat_for_ten_minutes("c")  # over an hour later: fires again

    harness.run(body)

    async def timer_outcomes(eid: str) -> list[str]:
        return [r.outcome for r in await engine.log.for_event(eid) if r.stage == "timer"]

    outcomes = {eid: harness.run(lambda eid=eid: timer_outcomes(eid)) for eid in "abc"}  # type: ignore[misc]
    assert outcomes == {"a": ["fired"], "b": ["suppressed"], "c": ["fired"]}
    assert len(harness.jobs("heat")) == 2


def test_events_past_the_hop_limit_are_dropped_as_a_loop(harness: Harness) -> None:
    harness.add("on ping do emit ping", name="echo")

    async def body() -> tuple[str, str]:
        ok = await harness.send("ping", id="p16", extensions={"ondohops": 16})
        dropped = await harness.send("ping", id="p17", extensions={"ondohops": 17})
        return ok[0].outcome, dropped[0].outcome

    assert harness.run(body) == (enforcement.FIRED, enforcement.DROPPED_LOOP)
    assert len(harness.jobs("echo")) == 1


def test_rules_see_only_their_namespace_and_disabled_rules_see_nothing(harness: Harness) -> None:
    harness.add("on ping do emit pong", name="pinger")
    book = harness.platform.rules.book

    async def body() -> list[int]:
        counts = [len(await harness.send("ping", namespace="other"))]
        await book.set_enabled("default", "pinger", False)
        counts.append(len(await harness.send("ping")))
        await book.set_enabled("default", "pinger", True)
        counts.append(len(await harness.send("ping")))
        await book.delete("default", "pinger")
        counts.append(len(await harness.send("ping")))
        return counts

    assert harness.run(body) == [0, 0, 1, 0]


def test_validation_refuses_without_creating_anything(harness: Harness) -> None:
    book = harness.platform.rules.book
    with pytest.raises(RuleSyntaxError):
        book.prepare("default", "admin", text="on ping do dance")
    with pytest.raises(RuleError, match="no function 'nope'"):
        book.prepare("default", "admin", text="on ping do invoke nope")
    with pytest.raises(RuleError, match=r"acts on mail\.received events only"):
        book.prepare("default", "admin", text="on ping do bcc bob")
    with pytest.raises(RuleError, match="no contact or group 'bob'"):
        book.prepare("default", "admin", text="on ping do notify bob")
    with pytest.raises(RuleError, match="more than zero"):
        book.prepare(
            "default",
            "admin",
            definition={
                "pattern": {"type": ["ping"]},
                "window": {"kind": "count", "count": 2, "within_s": 0},
                "actions": [{"kind": "emit", "target": "pong"}],
            },
        )
    assert harness.run(lambda: harness.platform.store.repos.rules.in_namespace("default")) == []


def test_names_are_derived_and_unique(harness: Harness) -> None:
    name = harness.add("on order.placed do emit order.seen")
    assert name.startswith("order-placed-")
    with pytest.raises(Conflict):
        harness.add("on order.placed do emit order.other", name=name)


def test_rules_reload_from_the_store(tmp_path: Path) -> None:
    first = Harness(tmp_path / "data")
    first.add("on ping 2 times within 1m do emit pong", name="twice")

    async def send(h: Harness, eid: str) -> str:
        return (await h.send("ping", id=eid))[0].outcome

    assert first.run(lambda: send(first, "1")) == "counted"
    first.close()
    second = Harness(tmp_path / "data")
    assert second.run(lambda: send(second, "2")) == "fired"
    second.close()


def test_a_batch_is_decided_in_order_with_its_jobs_and_a_repeat_changes_nothing(
    harness: Harness,
) -> None:
    """One transaction for a whole batch: records come enqueued, counts see earlier events."""
    harness.add("on ping do emit pong", name="pinger")
    harness.add("on ping 2 times within 1h do emit pong.twice", name="twice")
    batch = [
        StoredEvent(seq, CloudEvent(source="s", type="ping", id=f"b{seq}"), 0.0, "default")
        for seq in range(1, 4)
    ]
    engine = harness.platform.rules
    first = harness.run(lambda: engine.dispatch_now(batch))
    assert [(r.rule, r.outcome) for r in first] == [
        ("pinger", "fired"),
        ("twice", "counted"),
        ("pinger", "fired"),
        ("twice", "fired"),
        ("pinger", "fired"),
        ("twice", "counted"),
    ]
    assert all(r.enqueued for r in first)
    again = harness.run(lambda: engine.dispatch_now(batch))  # re-delivered after a crash
    assert [r.id for r in again] == [r.id for r in first]
    assert len(harness.jobs("pinger")) == 3 and len(harness.jobs("twice")) == 1


def test_bcc_and_forward_need_a_rule_that_can_match_mail_received(harness: Harness) -> None:
    book = harness.platform.rules.book
    for text in (
        "on mail.received from mail do bcc trent@example.org",
        "on mail.* do forward to archive@example.org, trent@example.org",
    ):
        book.prepare("default", "admin", text=text)
    json_rule = {"pattern": {"source": ["mail"]}, "actions": [{"kind": "bcc", "target": "t@e.org"}]}
    book.prepare("default", "admin", definition=json_rule)  # no type: it may match mail
    for text in ("on order.created do bcc t@example.org", "on mail.sent do forward a@example.org"):
        with pytest.raises(RuleError, match=r"acts on mail\.received events only") as caught:
            book.prepare("default", "admin", text=text)
        assert "write `on mail.received from SOURCE" in str(caught.value)
