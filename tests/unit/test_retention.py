"""The retention service: sweeps in batches, watermarks, metrics, and what a miss is told."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.events import IndexedEvent
from ondo.clock import ManualClock
from ondo.config import Config
from ondo.events import CloudEvent
from ondo.functions.model import InvocationRecord
from ondo.ids import uuid7, uuid7_time
from ondo.platform import Platform
from ondo.retention import RetentionService
from ondo.units import duration_text

DAY = 86400.0


@dataclass
class Rows:
    """A kind of record held in a list of creation times; records each call's limit."""

    name: str
    times: list[float]
    calls: list[int] = field(default_factory=list)
    fail: bool = False

    async def prune(self, before: float, limit: int) -> int:
        self.calls.append(limit)
        if self.fail:
            raise OSError("disk on fire")
        old = sorted(t for t in self.times if t < before)[:limit]
        for t in old:
            self.times.remove(t)
        return len(old)


@dataclass
class Watching(Rows):
    """Rows that note the kind's watermark each time they are asked to delete."""

    store: Store | None = None
    watermarks: list[float | None] = field(default_factory=list)

    async def prune(self, before: float, limit: int) -> int:
        assert self.store is not None
        self.watermarks.append(await self.store.repos.watermarks.get(self.name))
        return await super().prune(before, limit)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
    yield opened
    asyncio.run(opened.close())


def service_of(store: Store, clock: ManualClock, batch: int = 3) -> RetentionService:
    return RetentionService(clock, store.repos.watermarks, CollectorRegistry(), batch=batch)


def test_a_sweep_deletes_in_batches_until_nothing_is_left(store: Store) -> None:
    clock, registry = ManualClock(start=1000.0), CollectorRegistry()
    service = RetentionService(clock, store.repos.watermarks, registry, batch=3)
    rows = Rows("rows", [float(t) for t in range(10)] + [995.0])
    service.register(rows, 10.0, "rows")
    assert asyncio.run(service.sweep()) == {"rows": 10}
    assert rows.times == [995.0] and rows.calls == [3, 3, 3, 3]  # the 4th found 1 < 3
    assert registry.get_sample_value("ondo_retention_pruned_rows_total", {"kind": "rows"}) == 10
    assert asyncio.run(service.watermarks.get("rows")) == 990.0
    assert asyncio.run(service.sweep()) == {"rows": 0}


def test_the_watermark_is_raised_before_anything_is_deleted(store: Store) -> None:
    clock = ManualClock(start=1000.0)
    service = service_of(store, clock)
    rows = Watching("rows", [1.0, 2.0], store=store)
    service.register(rows, 10.0, "rows")
    assert asyncio.run(service.sweep()) == {"rows": 2}
    assert rows.watermarks == [990.0]  # a lookup racing the delete already hears "deleted"


def test_a_miss_older_than_the_watermark_is_explained(store: Store) -> None:
    clock = ManualClock(start=100 * DAY)
    service = service_of(store, clock)
    service.register(Rows("events", [1.0]), 7 * DAY, "events")
    service.register(Rows("jobs", []), 7 * DAY, "finished action jobs")

    def deleted(kind: str, at: float | None) -> str | None:
        return asyncio.run(service.deleted(kind, at))

    assert deleted("events", 2.0) is None  # retention has not run yet
    assert asyncio.run(service.may_have_deleted("events")) is None
    asyncio.run(service.sweep())
    assert deleted("events", 2.0) == "older than the retention of events (7 days)"
    assert deleted("events", 99 * DAY) is None  # newer than what retention deletes
    assert deleted("events", None) is None
    assert asyncio.run(service.may_have_deleted("events")) == "the retention of events (7 days)"
    assert asyncio.run(service.may_have_deleted("other")) is None  # not a kind


def test_kept_forever_is_never_swept_and_a_failing_kind_does_not_stop_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(start=1000.0)
    service = service_of(store, clock)
    forever, broken, fine = (
        Rows("forever", [1.0]),
        Rows("broken", [1.0], fail=True),
        Rows("fine", [1.0]),
    )
    service.register(forever, math.inf, "kept")
    service.register(broken, 1.0, "broken rows")
    service.register(fine, 1.0, "fine rows")
    with caplog.at_level(logging.INFO, logger="ondo.retention"):
        assert asyncio.run(service.sweep()) == {"fine": 1}
    assert forever.calls == [] and forever.times == [1.0]
    assert "could not delete old broken rows" in caplog.text
    assert "retention deleted 1 fine rows" in caplog.text


def test_the_service_sweeps_as_the_clock_moves(store: Store) -> None:
    async def scenario() -> None:
        clock = ManualClock(start=1000.0)
        service = RetentionService(clock, store.repos.watermarks, CollectorRegistry(), every_s=60.0)
        rows = Rows("rows", [1000.0, 1030.0])
        service.register(rows, 10.0, "rows")
        await service.start()
        while not rows.calls:  # the first sweep, at start: nothing is 10 s old yet
            await asyncio.sleep(0.01)
        clock.advance(20.0)  # the next sweep is due at 1060
        await asyncio.sleep(0.1)
        assert rows.times == [1000.0, 1030.0]
        clock.advance(60.0)
        while rows.times:
            await asyncio.sleep(0.01)
        await service.stop()

    asyncio.run(asyncio.wait_for(scenario(), 10.0))


def test_duration_text_and_uuid7_time() -> None:
    assert duration_text(7 * DAY) == "7 days"
    assert duration_text(DAY) == "1 day"
    assert duration_text(90 * 60) == "90 minutes"
    assert duration_text(30.0) == "30 seconds"
    assert duration_text(1.5) == "1.5 seconds"
    made = uuid7_time(uuid7())
    assert made is not None and abs(made - datetime.now(UTC).timestamp()) < 3600
    assert uuid7_time("order-17") is None
    assert uuid7_time("3f2504e0-4f89-11d3-9a0c-0305e82c3301") is None  # a v1 UUID


def test_the_platform_registers_every_kind_with_its_retention(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data", manual_clock=True, bus_url="memory://")
    platform = Platform(config)

    async def scenario() -> None:
        clock = platform.clock
        assert isinstance(clock, ManualClock)
        await platform.bus.append([CloudEvent(source="/s", type="t", id="old")])
        await platform.store.repos.invocations.record(
            InvocationRecord("inv-1", "default", "f", 1, "succeeded", "sync", clock.now())
        )
        row = IndexedEvent("default", "/s", "old", 1, "t", clock.now())
        await platform.store.repos.event_index.add([row])
        clock.advance(7 * DAY + 1)
        swept = await platform.retention.sweep()
        assert swept["events"] == 1 and swept["invocation_records"] == 0
        assert swept["event_index"] == 1
        assert await platform.bus.by_id("old") == []
        clock.advance(23 * DAY)
        assert (await platform.retention.sweep())["invocation_records"] == 1
        await platform.bus.close()
        await platform.store.close()

    try:
        assert set(platform.retention.kinds) == {
            "events",
            "invocation_records",
            "rule_decisions",
            "skipped_events",
            "action_jobs",
            "window_rows",
            "event_index",
        }
        asyncio.run(scenario())
    finally:
        platform.data_lock.release()
