"""The supervisor on a real store (SQLite and PostgreSQL) and a real bus, with a scripted kind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ondo.backends.bus.memory import MemoryBus
from ondo.backends.store import Store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import ManualClock
from ondo.errors import NotFound
from ondo.metrics import Metrics
from ondo.sources import kinds, supervisor
from ondo.sources.supervisor import BusEvents, SourceStatus, SourceSupervisor
from tests.unit.store.conftest import make_store, store_url

__all__ = ["make_store", "store_url"]  # the fixtures, used by name


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.KIND_MODULES, "scripted", ("tests.unit.sources.scripted_kind", ""))
    monkeypatch.setattr(supervisor, "FIRST_BACKOFF_S", 0.01)


@asynccontextmanager
async def running(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> AsyncIterator[tuple[SourceSupervisor, Store, MemoryBus, Metrics]]:
    store = await make_store()
    bus = MemoryBus()
    metrics = Metrics()
    sup = SourceSupervisor(
        store, BusEvents(bus, metrics), ManualClock(1000.0), metrics.registry, tmp_path, 65536
    )
    await sup.start()
    try:
        yield sup, store, bus, metrics
    finally:
        await sup.stop()
        await bus.close()
        await store.close()


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def source(name: str, **spec: object) -> StoredSource:
    full = {"types": [], "fail_runs": 0, "problems": [], **spec}
    return StoredSource("default", name, "scripted", full, "app", 1.0)


def test_a_deployed_source_runs_emits_and_shows_its_counters(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, bus, metrics):
            await store.repos.sources.put(source("door", types=["door.opened", "door.closed"]))
            await until(lambda: _state(sup, "door").events == 2, "two events")
            status = sup.status("default", "door")
            assert (status.state, status.detail, status.errors) == ("connected", "run 1", 0)
            assert [e.event.type for e in await bus.read(0, 10)] == [
                "door.opened",
                "door.closed",
            ]
            text = metrics.render().decode()
            assert (
                'ondo_source_events_total{kind="scripted",namespace="default",source="door"} 2.0'
                in text
            )
            assert (
                'ondo_source_connected{kind="scripted",namespace="default",source="door"} 1.0'
                in text
            )

    asyncio.run(body())


def test_a_failing_source_retries_with_its_error_shown_then_connects(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, _bus, _metrics):
            await store.repos.sources.put(source("flaky", fail_runs=2, types=["x.y"]))
            await until(lambda: _state(sup, "flaky").state == "connected", "connected")
            status = sup.status("default", "flaky")
            assert (status.errors, status.restarts, status.detail) == (2, 2, "run 3")
            assert status.last_error == "ConnectionError: refused on run 2"
            assert await store.repos.sources.state("default", "flaky") == {"runs": "3"}

    asyncio.run(body())


def test_problems_are_counted_without_a_reconnect(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, _bus, _metrics):
            await store.repos.sources.put(source("mqtt", problems=["bad payload on t/1"]))
            await until(lambda: _state(sup, "mqtt").errors == 1, "the problem")
            status = sup.status("default", "mqtt")
            assert (status.state, status.last_error, status.restarts) == (
                "connected",
                "bad payload on t/1",
                0,
            )

    asyncio.run(body())


def test_redeploy_restarts_and_delete_stops(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, bus, _metrics):
            await store.repos.sources.put(source("door", types=["a.b"]))
            await until(lambda: _state(sup, "door").events == 1, "the first event")
            await store.repos.sources.put(source("door", types=["a.b", "c.d"]))
            # The new run's ids: door-0 again (a duplicate, not counted) and door-1.
            await until(lambda: _state(sup, "door").detail == "run 2", "the second run")
            await until(lambda: _state(sup, "door").events == 1, "the new event")
            assert len(await bus.read(0, 10)) == 2
            await store.repos.sources.delete("default", "door")
            await until(lambda: not sup.statuses(), "the source to go")
            with pytest.raises(NotFound, match="ondo sources list"):
                sup.status("default", "door")

    asyncio.run(body())


def test_an_unknown_kind_fails_with_the_known_ones_named(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, _bus, _metrics):
            await store.repos.sources.put(StoredSource("default", "old", "telex", {}, None, 1.0))
            await until(lambda: _state(sup, "old").state == "failed", "failed")
            assert "unknown source kind 'telex'; known kinds: http" in str(
                sup.status("default", "old").last_error
            )

    asyncio.run(body())


def test_a_missing_library_fails_once_without_retrying(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        async with running(make_store, tmp_path) as (sup, store, _bus, _metrics):
            await store.repos.sources.put(source("door", needs="ondo_no_such_library"))
            await until(lambda: _state(sup, "door").state == "failed", "failed")
            await asyncio.sleep(0.1)  # several backoffs' worth: no retry comes
            status = sup.status("default", "door")
            assert (status.errors, status.restarts) == (1, 0)
            assert "No module named 'ondo_no_such_library'" in str(status.last_error)

    asyncio.run(body())


def test_a_second_supervisor_on_the_store_runs_what_is_stored(
    make_store: Callable[[], Awaitable[Store]], tmp_path: Path
) -> None:
    async def body() -> None:
        store = await make_store()
        try:
            await store.repos.sources.put(source("door", types=["a.b"]))
        finally:
            await store.close()
        async with running(make_store, tmp_path) as (sup, _store, _bus, _metrics):
            await until(lambda: _state(sup, "door").events == 1, "the stored source to run")

    asyncio.run(body())


def _state(sup: SourceSupervisor, name: str) -> SourceStatus:
    found = [s for s in sup.statuses() if s.name == name]
    return found[0] if found else SourceStatus("default", name, "?", None, state="stopped")
