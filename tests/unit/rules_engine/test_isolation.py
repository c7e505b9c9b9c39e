"""Issue 9 item 4: a rule that fails on an event is disabled with its reason, and every other
rule goes on deciding that event and the later ones; nothing is skipped silently."""

from __future__ import annotations

import json
from typing import Any

from ondo.backends.bus.base import StoredEvent
from ondo.backends.store.repositories.rules import StoredRule
from ondo.errors import RuleError
from ondo.events import CloudEvent
from ondo.rules import enforcement
from ondo.rules.isolation import RULE_FAILED
from ondo.rules.tester import dry_run
from tests.unit.rules_engine.conftest import Harness

# A condition in CEL that looks up a path it computes: too long a path (MAX_PATH_SEGMENTS)
# cannot be refused when the rule is defined, so its evaluation raises on every event.
LONG_PATH = '"a" + ".a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a"'
FAILING = {
    "pattern": {"type": ["order.placed"]},
    "condition": f"values[{LONG_PATH}] == []",
    "actions": [{"kind": "emit", "target": "order.odd"}],
}


def _add_json(harness: Harness, name: str, definition: dict[str, Any]) -> None:
    book = harness.platform.rules.book
    harness.run(
        lambda: book.add(book.prepare("default", "admin", name=name, definition=definition))
    )


async def _publish_and_dispatch(harness: Harness, *event_ids: str) -> None:
    platform = harness.platform
    events = [CloudEvent(source="shop", type="order.placed", id=i, data={}) for i in event_ids]
    await platform.bus.append(events)
    dispatcher = platform.rules.dispatcher
    assert dispatcher is not None
    await dispatcher.catch_up()


def _outcomes(harness: Harness, event_id: str) -> dict[str, str]:
    records = harness.run(lambda: harness.platform.rules.log.for_event(event_id))
    return {r.rule: r.outcome for r in records}


def _stored(harness: Harness, name: str) -> StoredRule:
    return harness.run(lambda: harness.platform.rules.book.get("default", name))


def test_a_failing_rule_is_disabled_and_the_others_fire_on_the_same_event(
    harness: Harness,
) -> None:
    harness.add("on order.placed do emit order.seen", name="good")
    _add_json(harness, "bad", FAILING)
    harness.add("on order.placed where total > limit do emit order.big", name="other")

    async def body() -> tuple[list[str], list[Any]]:
        await _publish_and_dispatch(harness, "o-1")
        trace = await harness.platform.tracer.trace("o-1", "default")
        await _publish_and_dispatch(harness, "o-2")
        failed = [s.event for s in await harness.platform.bus.read(0, 100)]
        return trace["lines"], [e for e in failed if e.type == RULE_FAILED]

    lines, announced = harness.run(body)
    assert _outcomes(harness, "o-1") == {
        "bad": enforcement.FAILED,
        "good": enforcement.FIRED,
        "other": enforcement.CONDITION_FALSE,
    }
    assert _outcomes(harness, "o-2") == {"good": enforcement.FIRED, "other": "condition false"}
    stored = _stored(harness, "bad")
    assert not stored.enabled
    assert stored.disabled_reason is not None and "MAX_PATH_SEGMENTS" in stored.disabled_reason
    assert stored.to_json()["disabled_reason"] == stored.disabled_reason
    assert any(
        "rule bad failed on this event" in line and "was disabled" in line for line in lines
    ), lines
    assert len(announced) == 1
    assert (announced[0].source, announced[0].subject) == ("ondo", "bad")
    data: Any = announced[0].data
    assert data["event"]["id"] == "o-1" and "MAX_PATH_SEGMENTS" in data["reason"]
    assert [json.loads(j["request"])["action"]["target"] for j in harness.jobs("good")] == [
        "order.seen",
        "order.seen",
    ]


def test_enabling_the_rule_again_lets_it_fail_again_and_be_disabled_again(
    harness: Harness,
) -> None:
    _add_json(harness, "bad", FAILING)
    harness.run(lambda: _publish_and_dispatch(harness, "o-1"))
    book = harness.platform.rules.book
    assert harness.run(lambda: book.set_enabled("default", "bad", True)).disabled_reason is None
    harness.run(lambda: _publish_and_dispatch(harness, "o-2"))
    assert _stored(harness, "bad").disabled_reason is not None
    assert _outcomes(harness, "o-2") == {"bad": enforcement.FAILED}


def test_a_stored_rule_that_no_longer_loads_is_disabled_with_its_reason_at_start(
    harness: Harness,
) -> None:
    """A rule stored by a version without today's bounds: a condition of 100 parentheses
    compiled, then raised RecursionError when evaluated."""
    harness.add("on order.placed do emit order.seen", name="good")
    old = {**FAILING, "condition": "(" * 100 + "true" + ")" * 100, "base_pattern": None}
    old.update(window=None, throttle=None, text=None)
    old["actions"] = [{"kind": "emit", "target": "x", "args": None, "cc": []}]
    old_rule = StoredRule("default", "old", "admin", None, old)
    platform = harness.platform
    harness.run(lambda: platform.store.repos.rules.put(old_rule, 0.0))
    harness.run(platform.rules.stop)
    harness.run(platform.rules.start)  # as a restart would
    stored = _stored(harness, "old")
    assert not stored.enabled
    assert stored.disabled_reason is not None and "MAX_CEL_DEPTH" in stored.disabled_reason
    book = platform.rules.book
    try:
        harness.run(lambda: book.set_enabled("default", "old", True))
    except RuleError as exc:
        assert "MAX_CEL_DEPTH" in str(exc)
    else:
        raise AssertionError("a rule that cannot be loaded was enabled")
    assert book.compiled_rule("default/good") is not None


def test_the_dry_run_says_that_a_rule_fails_on_the_event(harness: Harness) -> None:
    _add_json(harness, "bad", FAILING)
    event = {"specversion": "1.0", "id": "e", "source": "shop", "type": "order.placed"}
    (result,) = harness.run(lambda: dry_run(harness.platform.rules, "default", event))["results"]
    assert result["matches"] is False
    assert "fails on this event" in result["reason"] and "MAX_PATH_SEGMENTS" in result["reason"]


def test_a_replay_through_a_failing_rule_disables_it_instead_of_failing(harness: Harness) -> None:
    harness.add("on order.placed do emit order.seen", name="good")
    _add_json(harness, "bad", FAILING)
    event = CloudEvent(source="shop", type="order.placed", id="r-1", data={})
    dispatcher = harness.platform.rules.dispatcher
    assert dispatcher is not None
    replayed = harness.run(
        lambda: dispatcher.replay([StoredEvent(1, event, 0.0, "default")], "bad")
    )
    assert replayed == 1
    assert _outcomes(harness, "r-1") == {"bad": enforcement.FAILED}
    assert not _stored(harness, "bad").enabled
