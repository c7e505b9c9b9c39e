"""The bus contract, run against every backend: order, dedup, offsets, waiting, queries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from ondo.backends.bus import Bus, open_bus
from ondo.errors import BusClosed, PayloadTooLarge
from ondo.events import CloudEvent
from tests.services import NATS_URL, require_nats, unique_cluster
from tests.unit.bus.indexed import IndexedNatsBus
from tests.unit.bus.nats_cleanup import delete_cluster

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", pytest.param("nats", marks=pytest.mark.nats)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class BusFactory:
    """Opens the backend under test; every bus it opens in one test shares one log."""

    backend: str
    url: str
    cluster: str
    store_path: Path  # NATS: the SQLite store holding its event index (shared like the log)

    def __call__(self, **options: object) -> Bus:
        if self.backend == "nats":
            indexed = IndexedNatsBus(self.url, self.cluster, self.store_path, **options)
            return cast(Bus, indexed)
        return open_bus(self.url, cluster=self.cluster, **options)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def make_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BusFactory]:
    backend: str = request.param
    if backend == "nats":
        require_nats()
    urls = {"memory": "memory://", "sqlite": f"sqlite://{tmp_path}/bus.db", "nats": NATS_URL}
    factory = BusFactory(backend, urls[backend], unique_cluster(), tmp_path / "ondo.db")
    yield factory
    if backend == "nats":
        delete_cluster(NATS_URL, factory.cluster)


def run(bus: Bus, body: Callable[[Bus], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            if isinstance(bus, IndexedNatsBus):
                await bus.open()
            await body(bus)
        finally:
            await bus.close()

    asyncio.run(main())


def ev(n: int, source: str = "/s", type: str = "t.happened") -> CloudEvent:
    return CloudEvent(id=f"e{n}", source=source, type=type, time=WHEN, data={"n": n})


def test_append_assigns_increasing_seqs_and_read_returns_in_order(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        first = await bus.append([ev(1), ev(2)])
        second = await bus.append([ev(3)])
        assert [r.seq for r in first + second] == [1, 2, 3]
        assert not any(r.duplicate for r in first + second)
        stored = await bus.read(0)
        assert [s.seq for s in stored] == [1, 2, 3]
        assert [s.event for s in stored] == [ev(1), ev(2), ev(3)]
        assert [s.seq for s in await bus.read(1, limit=1)] == [2]
        assert await bus.read(3) == []
        assert await bus.last_seq() == 3
        assert await bus.append([]) == []

    run(make_bus(), body)


def test_duplicates_of_source_and_id_are_dropped_and_reported(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        await bus.append([ev(1)])
        results = await bus.append([ev(1), ev(1, source="/other"), ev(2), ev(2)])
        assert [(r.seq, r.duplicate) for r in results] == [
            (1, True),
            (2, False),
            (3, False),
            (3, True),
        ]
        assert [s.seq for s in await bus.read(0)] == [1, 2, 3]
        assert bus.counters.duplicates == 2
        other_namespace = await bus.append([ev(1)], namespace="team-a")
        assert other_namespace[0].duplicate is False

    run(make_bus(), body)


def test_dedup_keys_expire_after_the_window(make_bus: BusFactory) -> None:
    if make_bus.backend == "nats":
        # JetStream measures its duplicate window by the NATS server's clock, which the fake
        # clock cannot move: the same contract, checked in real time with a 1 s window.
        run(make_bus(dedup_window_s=1.0), _dedup_expires_in_real_time)
        return
    clock = FakeClock()

    async def body(bus: Bus) -> None:
        await bus.append([ev(1)])
        clock.now += 59
        assert (await bus.append([ev(1)]))[0].duplicate
        clock.now += 2
        again = await bus.append([ev(1)])
        assert again[0].duplicate is False and again[0].seq == 2

    run(make_bus(clock=clock, dedup_window_s=60.0), body)


async def _dedup_expires_in_real_time(bus: Bus) -> None:
    await bus.append([ev(1)])
    while (again := (await bus.append([ev(1)]))[0]).duplicate:
        assert again.seq == 1  # until the window passes, the first copy is reported
        await asyncio.sleep(0.1)
    assert again.seq == 2


def test_duplicate_of_a_pruned_event_has_no_seq(make_bus: BusFactory) -> None:
    clock = FakeClock()

    async def body(bus: Bus) -> None:
        await bus.append([ev(1)])
        clock.now += 10
        assert await bus.prune(datetime.fromtimestamp(clock.now, UTC)) == 1
        result = (await bus.append([ev(1)]))[0]
        assert result.duplicate and result.seq is None

    run(make_bus(clock=clock), body)


def test_ack_and_committed_per_consumer(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        assert await bus.committed("dispatcher") == 0
        await bus.append([ev(1), ev(2), ev(3)])
        await bus.ack("dispatcher", 2)
        await bus.ack("audit", 3)
        assert await bus.committed("dispatcher") == 2
        assert await bus.committed("audit") == 3
        await bus.ack("dispatcher", 1)  # rewinding is allowed: that is how replay starts over
        assert await bus.committed("dispatcher") == 1

    run(make_bus(), body)


def test_wait_returns_at_once_when_an_event_exists(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        await bus.append([ev(1)])
        await asyncio.wait_for(bus.wait(0, timeout=3600), timeout=30)

    run(make_bus(), body)


def test_wait_wakes_when_another_task_appends(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        waiter = asyncio.create_task(bus.wait(0, timeout=3600))
        await asyncio.sleep(0)
        assert not waiter.done()
        await bus.append([ev(1)])
        await asyncio.wait_for(waiter, timeout=30)
        assert [s.seq for s in await bus.read(0)] == [1]

    run(make_bus(), body)


def test_wait_gives_up_after_its_timeout_without_events(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        await bus.append([ev(1)])
        await bus.wait(1, timeout=0.05)
        assert await bus.read(1) == []

    run(make_bus(), body)


def test_concurrent_appends_from_many_tasks_keep_per_source_order(make_bus: BusFactory) -> None:
    async def producer(bus: Bus, source: str) -> list[int]:
        seqs = []
        for n in range(20):
            (result,) = await bus.append([ev(n, source=source)])
            assert result.seq is not None
            seqs.append(result.seq)
        return seqs

    async def body(bus: Bus) -> None:
        sources = [f"/producer/{i}" for i in range(10)]
        per_source = await asyncio.gather(*(producer(bus, s) for s in sources))
        for seqs in per_source:
            assert seqs == sorted(seqs)
        stored = await bus.read(0, limit=1000)
        assert [s.seq for s in stored] == list(range(1, 201))
        for source, seqs in zip(sources, per_source, strict=True):
            in_log = [s.event.data["n"] for s in stored if s.event.source == source]
            assert in_log == list(range(20))
            assert [s.seq for s in stored if s.event.source == source] == seqs

    run(make_bus(), body)


def test_sqlite_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    async def body(bus: Bus) -> None:
        results = await asyncio.gather(*(bus.append([ev(n)]) for n in range(300)))
        assert sorted(r[0].seq or 0 for r in results) == list(range(1, 301))
        assert bus.counters.append_calls == 300
        assert bus.counters.events_written == 300
        assert bus.counters.transactions < 300  # one commit covered several appends

    run(open_bus(f"sqlite://{tmp_path}/bus.db"), body)


def test_oversized_event_is_refused_before_anything_is_written(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        big = CloudEvent(id="big", source="/s", type="t", data="x" * 2000)
        with pytest.raises(PayloadTooLarge, match="limit is 1000 B"):
            await bus.append([ev(1), big])
        assert await bus.read(0) == []

    run(make_bus(max_event_bytes=1000), body)


def test_get_by_id_since_and_tail(make_bus: BusFactory) -> None:
    clock = FakeClock()

    async def body(bus: Bus) -> None:
        await bus.append([ev(1, type="order.created"), ev(1, source="/b", type="order.paid")])
        clock.now += 100
        await bus.append([ev(2, type="user.created"), ev(3, type="order.created")], "team-a")
        found = await bus.get("/b", "e1")
        assert found is not None and found.seq == 2 and found.event.type == "order.paid"
        assert await bus.get("/b", "e1", namespace="team-a") is None
        assert await bus.get("/nope", "e1") is None
        assert [s.seq for s in await bus.by_id("e1")] == [1, 2]
        assert [s.seq for s in await bus.by_id("e3", namespace="default")] == []
        middle = datetime.fromtimestamp(clock.now - 50, UTC)
        assert [s.seq for s in await bus.since(middle)] == [3, 4]
        assert [s.seq for s in await bus.since(middle, "order.*")] == [4]
        start = datetime.fromtimestamp(0, UTC)
        assert [s.seq for s in await bus.since(start, after_seq=1, limit=2)] == [2, 3]
        assert [s.seq for s in await bus.since(start, namespace="default")] == [1, 2]
        assert [s.seq for s in await bus.tail(2)] == [3, 4]
        assert [s.seq for s in await bus.tail(5, "order.*")] == [1, 2, 4]
        assert [s.seq for s in await bus.tail(5, "order.[c]*", namespace="default")] == [1]
        stored = (await bus.read(2, limit=1))[0]
        assert stored.namespace == "team-a" and stored.received_at == clock.now

    run(make_bus(clock=clock), body)


def test_prune_keeps_seqs_growing(make_bus: BusFactory) -> None:
    clock = FakeClock()

    async def body(bus: Bus) -> None:
        await bus.append([ev(1), ev(2)])
        clock.now += 10
        assert await bus.prune(datetime.fromtimestamp(clock.now, UTC)) == 2
        assert await bus.read(0) == []
        assert (await bus.append([ev(3)]))[0].seq == 3
        assert [s.seq for s in await bus.read(0)] == [3]

    run(make_bus(clock=clock), body)


def test_prune_deletes_the_oldest_in_batches_of_at_most_limit(make_bus: BusFactory) -> None:
    clock = FakeClock()

    async def body(bus: Bus) -> None:
        for n in range(1, 8):
            await bus.append([ev(n)])
            clock.now += 1
        cutoff = datetime.fromtimestamp(clock.now - 2, UTC)  # e1..e5 are older
        assert await bus.prune(cutoff, limit=2) == 2
        assert [s.seq for s in await bus.read(0)] == [3, 4, 5, 6, 7]
        assert await bus.prune(cutoff, limit=2) == 2
        assert await bus.prune(cutoff, limit=2) == 1  # fewer than the limit: nothing left
        assert await bus.prune(cutoff, limit=2) == 0
        assert [s.seq for s in await bus.read(0)] == [6, 7]
        assert [s.seq for s in await bus.by_id("e6")] == [6]
        assert await bus.by_id("e5") == []

    run(make_bus(clock=clock), body)


def test_a_closed_bus_refuses_work(make_bus: BusFactory) -> None:
    async def body(bus: Bus) -> None:
        await bus.close()
        with pytest.raises(BusClosed):
            await bus.append([ev(1)])
        with pytest.raises(BusClosed):
            await bus.read(0)

    run(make_bus(), body)


def test_log_and_offsets_survive_reopening(make_bus: BusFactory) -> None:
    if make_bus.backend == "memory":
        pytest.skip("the memory bus keeps nothing across reopening, by design")

    async def write(bus: Bus) -> None:
        await bus.append([ev(1), ev(2)])
        await bus.ack("dispatcher", 1)

    async def check(bus: Bus) -> None:
        assert [s.event for s in await bus.read(0)] == [ev(1), ev(2)]
        assert await bus.committed("dispatcher") == 1
        assert (await bus.append([ev(2)]))[0].duplicate
        assert (await bus.append([ev(3)]))[0].seq == 3

    run(make_bus(), write)
    run(make_bus(), check)
