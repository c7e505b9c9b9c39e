"""The mqtt source against the real Mosquitto (127.0.0.1:1883), run by the real supervisor on a
real store (SQLite and PostgreSQL) and bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ondo.backends.bus.memory import MemoryBus
from ondo.backends.store import Store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import WallClock
from ondo.errors import BusError
from ondo.events import CloudEvent
from ondo.metrics import Metrics
from ondo.sources import supervisor
from ondo.sources.base import PlainWhere
from ondo.sources.mqtt import KIND
from ondo.sources.supervisor import AppendEvents, BusEvents, SourceStatus, SourceSupervisor
from tests.services import MQTT_HOST, MQTT_PORT, require_mqtt
from tests.unit.store.conftest import make_store, store_url

__all__ = ["make_store", "store_url"]  # the fixtures, used by name

pytestmark = pytest.mark.mqtt
StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(autouse=True)
def broker(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(supervisor, "FIRST_BACKOFF_S", 0.05)
    return require_mqtt()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own: the broker is shared."""
    return f"ondo-test/{uuid.uuid4().hex[:10]}"


class RefusingFirst:
    """The bus's append, refusing the first `times` calls as a bus that is away would."""

    def __init__(self, append: AppendEvents, times: int) -> None:
        self.append, self.left = append, times

    async def __call__(self, events: Sequence[CloudEvent], namespace: str) -> list[bool]:
        if self.left > 0:
            self.left -= 1
            raise BusError("the bus is away")
        return await self.append(events, namespace)


@asynccontextmanager
async def running(
    make_store: StoreFactory, tmp_path: Path, bus: MemoryBus, refuse: int = 0
) -> AsyncIterator[tuple[SourceSupervisor, Store]]:
    store = await make_store()
    metrics = Metrics()
    append = RefusingFirst(BusEvents(bus, metrics), refuse)
    sup = SourceSupervisor(store, append, WallClock(), metrics.registry, tmp_path, 65536)
    await sup.start()
    try:
        yield sup, store
    finally:
        await sup.stop()
        await store.close()


def mqtt_source(name: str, url: str, topics: list[Any], **more: Any) -> StoredSource:
    settings = {"url": url, "topics": topics, "session_expiry": 120, **more}
    return StoredSource("default", name, "mqtt", KIND.validate(settings, PlainWhere(Path("."))))


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def status(sup: SourceSupervisor, name: str) -> SourceStatus:
    """The source's status; `starting` until the supervisor heard of the deploy."""
    found = [s for s in sup.statuses() if s.name == name]
    return found[0] if found else SourceStatus("default", name, "mqtt", None)


async def publish(*messages: tuple[str, bytes | str]) -> None:
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def events(bus: MemoryBus) -> list[CloudEvent]:
    return [stored.event for stored in await bus.read(0, 10_000)]


def test_messages_become_events_with_subject_type_data_and_fields(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    topics = [
        {"topic": f"{prefix}/fitbit/{{subject}}/bp", "type": "health.blood_pressure"},
        {"topic": f"{prefix}/home/{{room}}/{{subject}}/{{type}}", "payload": "text"},
    ]
    source = mqtt_source("fitbit", broker, topics, type_prefix="home")

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "fitbit").state == "connected", "connected")
            assert status(sup, "fitbit").detail == "mqtt://127.0.0.1:1883, 2 topics"
            await publish(
                (f"{prefix}/fitbit/alice/bp", '{"systolic": 150, "diastolic": 95}'),
                (f"{prefix}/home/kitchen/bob/temperature", "21.5"),
            )
            await until(lambda: status(sup, "fitbit").events == 2, "two events")
            bp, temp = sorted(await events(bus), key=lambda e: e.type)
            assert (bp.source, bp.type, bp.subject) == ("fitbit", "health.blood_pressure", "alice")
            assert bp.data == {"systolic": 150, "diastolic": 95}
            assert bp.extensions == {"mqtttopic": f"{prefix}/fitbit/alice/bp"}
            assert (temp.type, temp.subject, temp.data) == ("home.temperature", "bob", "21.5")
            assert temp.extensions["room"] == "kitchen"
            assert status(sup, "fitbit").errors == 0
        await bus.close()

    asyncio.run(body())


def test_malformed_payloads_are_counted_and_shown_and_the_source_stays_connected(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    source = mqtt_source("meter", broker, [{"topic": f"{prefix}/{{subject}}", "type": "m.read"}])

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "meter").state == "connected", "connected")
            await publish((f"{prefix}/a", "not json {"), (f"{prefix}/b", b"\xff\xfe\x00garbage"))
            await until(lambda: status(sup, "meter").errors == 2, "two problems")
            await publish((f"{prefix}/c", '{"kwh": 3}'))
            await until(lambda: status(sup, "meter").events == 1, "the good message's event")
            shown = status(sup, "meter")
            assert (shown.state, shown.restarts) == ("connected", 0)
            assert f"message on topic '{prefix}/b' was not made an event" in str(shown.last_error)
            assert [(e.subject, e.data) for e in await events(bus)] == [("c", {"kwh": 3})]
        await bus.close()

    asyncio.run(body())


def test_messages_published_while_ondo_was_away_arrive_when_it_comes_back(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    source = mqtt_source("door", broker, [{"topic": f"{prefix}/{{subject}}", "type": "door.x"}])

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "door").state == "connected", "connected")
        # The supervisor is stopped: the broker keeps the session and queues for it.
        await publish(*[(f"{prefix}/d{n}", f'{{"n": {n}}}') for n in range(3)])
        async with running(make_store, tmp_path, bus) as (sup, _store):
            await until(lambda: status(sup, "door").events == 3, "the three queued messages")
        assert sorted(e.data["n"] for e in await events(bus)) == [0, 1, 2]
        await bus.close()

    asyncio.run(body())


def test_a_message_whose_append_failed_comes_again_after_the_reconnect(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    source = mqtt_source("door", broker, [{"topic": f"{prefix}/{{subject}}", "type": "door.x"}])

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus, refuse=1) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "door").state == "connected", "connected")
            await publish((f"{prefix}/front", '{"open": true}'))
            await until(lambda: status(sup, "door").events == 1, "the event, on the second try")
            shown = status(sup, "door")
            assert (shown.restarts, shown.last_error) == (1, "the bus is away")
            assert [(e.subject, e.data) for e in await events(bus)] == [("front", {"open": True})]
        await bus.close()

    asyncio.run(body())


def test_a_burst_is_delivered_whole_and_in_order(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    source = mqtt_source("burst", broker, [{"topic": f"{prefix}/{{subject}}"}])

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "burst").state == "connected", "connected")
            # more than one batch (MAX_BATCH), within the broker's window and queue
            await publish(*[(f"{prefix}/s", f'{{"n": {n}}}') for n in range(2500)])
            await until(lambda: status(sup, "burst").events == 2500, "2500 events")
            found = await events(bus)
            assert [e.data["n"] for e in found] == list(range(2500))
            assert len({e.id for e in found}) == 2500
            assert {e.type for e in found} == {"mqtt.message"}
        await bus.close()

    asyncio.run(body())


def test_a_redeploy_without_a_topic_unsubscribes_from_it(
    make_store: StoreFactory, tmp_path: Path, broker: str, prefix: str
) -> None:
    both = [{"topic": f"{prefix}/keep/{{subject}}"}, {"topic": f"{prefix}/drop/{{subject}}"}]

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(mqtt_source("s", broker, both))
            await until(lambda: status(sup, "s").detail.endswith("2 topics"), "two topics")
            await store.repos.sources.put(mqtt_source("s", broker, both[:1]))
            await until(lambda: status(sup, "s").detail.endswith(", 1 topic"), "one topic")
            await publish((f"{prefix}/drop/x", "1"), (f"{prefix}/keep/y", "2"))
            await until(lambda: status(sup, "s").events == 1, "the kept topic's event")
            # One publisher's messages reach a session in order: `drop/x` would have come first.
            assert [e.subject for e in await events(bus)] == ["y"]
            assert status(sup, "s").errors == 0
        await bus.close()

    asyncio.run(body())


def test_an_unreachable_broker_is_retried_with_the_error_shown(
    make_store: StoreFactory, tmp_path: Path, prefix: str
) -> None:
    source = mqtt_source("away", "mqtt://127.0.0.1:1", [{"topic": f"{prefix}/#"}])

    async def body() -> None:
        bus = MemoryBus()
        async with running(make_store, tmp_path, bus) as (sup, store):
            await store.repos.sources.put(source)
            await until(lambda: status(sup, "away").restarts >= 2, "two retries")
            shown = status(sup, "away")
            assert shown.state in ("retrying", "starting")
            assert "refused" in str(shown.last_error).lower()
        await bus.close()

    asyncio.run(body())
