"""The notices hub, and the `ondo` source that puts a namespace's notices on the bus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ondo.backends.store.repositories.sources import StoredSource
from ondo.errors import ConfigError
from ondo.events import HOPS_EXTENSION
from ondo.notices import (
    ACTION_DEAD_LETTERED,
    INVOCATION_FAILED,
    RULE_CHANGED,
    SOURCE_DISCONNECTED,
    Notice,
    Notices,
)
from ondo.sources.base import PlainWhere
from ondo.sources.platform_events import KIND
from tests.unit.sources.harness import SourceHarness

T0 = 1_800_000_000.0


def test_the_hub_delivers_to_the_subscribers_of_the_namespace_only() -> None:
    hub = Notices()
    heard: list[tuple[str, Notice]] = []
    assert not hub.listened("default")
    hub.publish("default", RULE_CHANGED, "r", {"rule": "r"})  # nobody listens: nothing happens
    stop_a = hub.subscribe("default", lambda n: heard.append(("a", n)))
    stop_b = hub.subscribe("default", lambda n: heard.append(("b", n)))
    hub.subscribe("other", lambda n: heard.append(("other", n)))
    assert hub.listened("default") and not hub.listened("third")
    hub.publish("default", RULE_CHANGED, "r", {"rule": "r"}, hops=2)
    assert [who for who, _ in heard] == ["a", "b"]
    first, second = (n for _, n in heard)
    assert first is second and first.hops == 2 and first.subject == "r"
    stop_a()
    stop_a()  # twice is harmless
    stop_b()
    assert not hub.listened("default") and hub.listened("other")
    hub.publish("default", RULE_CHANGED, "r", {})
    assert len(heard) == 2


def test_a_failing_subscriber_does_not_fail_the_publisher_or_the_others() -> None:
    hub = Notices()
    heard: list[Notice] = []

    def broken(notice: Notice) -> None:
        raise RuntimeError("bug in a subscriber")

    hub.subscribe("default", broken)
    hub.subscribe("default", heard.append)
    hub.publish("default", INVOCATION_FAILED, "billing", {"function": "billing"})
    assert [n.subject for n in heard] == ["billing"]


def run(tmp_path: Path, body: Any) -> None:
    async def main() -> None:
        async with SourceHarness(tmp_path, T0) as harness:
            await body(harness)

    asyncio.run(main())


def test_the_source_emits_its_namespace_notices_of_the_chosen_types(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        hub = h.supervisor.notices
        assert not hub.listened("default")
        await h.deploy("ops", "ondo", {"types": [INVOCATION_FAILED, ACTION_DEAD_LETTERED]})
        await h.until(lambda: h.status("ops").state == "connected")
        assert hub.listened("default") and not hub.listened("other")
        data = {"function": "billing", "invocation_id": "inv-1"}
        hub.publish("default", INVOCATION_FAILED, "billing", data, hops=3)
        hub.publish("default", RULE_CHANGED, "r", {"rule": "r"})  # not chosen
        hub.publish("other", INVOCATION_FAILED, "billing", data)  # another namespace
        hub.publish("default", ACTION_DEAD_LETTERED, "r", {"rule": "r", "job_id": 7})
        events = await h.until(lambda: h.status("ops").events == 2 and h.events())
        failed, dead = await events
        assert (failed.source, failed.type, failed.subject) == (
            "ondo",
            INVOCATION_FAILED,
            "billing",
        )
        assert failed.data == {"namespace": "default", **data}
        assert failed.extensions == {HOPS_EXTENSION: 3}
        assert failed.time.timestamp() == T0
        assert (dead.type, dead.data["job_id"], dead.extensions) == (ACTION_DEAD_LETTERED, 7, {})
        await h.store.repos.sources.delete("default", "ops")
        await h.until(lambda: not hub.listened("default"))  # deleted: publishing costs nothing

    run(tmp_path, body)


def test_two_ondo_sources_in_a_namespace_make_one_event_per_notice(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        for name in ("ops", "audit"):
            await h.deploy(name, "ondo", {})
            await h.until(lambda n=name: h.status(n).state == "connected")
        h.supervisor.notices.publish("default", RULE_CHANGED, "r", {"rule": "r"})
        await h.until(lambda: h.status("ops").events + h.status("audit").events == 1)
        assert [e.type for e in await h.events()] == [RULE_CHANGED]

    run(tmp_path, body)


def test_a_source_that_fails_is_announced_as_disconnected(tmp_path: Path) -> None:
    async def body(h: SourceHarness) -> None:
        await h.deploy("ops", "ondo", {"types": [SOURCE_DISCONNECTED]})
        await h.until(lambda: h.status("ops").state == "connected")
        # Stored by hand with a time zone its run cannot load: the run raises.
        spec = {"cron": "* * * * *", "rate": None, "every_s": None, "timezone": "Nowhere/Atlantis"}
        spec |= {"catch_up": False, "type": "t", "subject": None, "data": {}}
        await h.store.repos.sources.put(StoredSource("default", "broken", "schedule", spec))
        events = await h.until(lambda: h.status("ops").events >= 1 and h.events("ondo"))
        event = (await events)[0]
        assert (event.type, event.subject) == (SOURCE_DISCONNECTED, "broken")
        assert event.data["kind"] == "schedule" and "Nowhere/Atlantis" in event.data["error"]
        assert h.status("broken").state == "retrying"

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"types": "ondo.rule.changed"}, "types must be a list"),
        ({"types": ["ondo.rule.exploded"]}, "sources.ops.types.0: unknown type"),
        ({"filter": 1}, "unknown key 'filter'"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^sources\.ops") as caught:
        KIND.validate(settings, PlainWhere(Path("."), "sources.ops"))
    assert message in str(caught.value)


def test_types_default_to_all() -> None:
    assert KIND.validate({}, PlainWhere(Path("."), "x")) == {"types": []}
