"""A real source supervisor for the change-capture tests: the SQLite store, a real bus (SQLite,
or NATS JetStream), and the sources deployed through the store as `ondo deploy` does.

Unlike harness.py (a memory bus, a manual clock), the bus here is durable and outlives a stop:
what the outbox tests prove is delivery once each across stops and crashes, which is the bus's
dedup by id, on the backends that ship."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ondo.backends.bus import Bus, open_bus
from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import WallClock
from ondo.errors import NotFound
from ondo.events import CloudEvent
from ondo.metrics import Metrics
from ondo.sources.base import PlainWhere
from ondo.sources.kinds import source_kind
from ondo.sources.supervisor import BusEvents, SourceStatus, SourceSupervisor

NAMESPACE = "default"


class Harness:
    """`async with Harness(tmp_path) as h:` runs a supervisor; `restart()` is a new process's
    supervisor on the same store and bus files."""

    def __init__(self, root: Path, bus_url: str = "", cluster: str = "ondo") -> None:
        self.root = root
        self.bus_url = bus_url or f"sqlite://{root}/bus.db"
        self.cluster = cluster
        self.store: Store | None = None
        self.bus: Bus | None = None
        self.supervisor: SourceSupervisor | None = None

    async def __aenter__(self) -> Harness:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.store = open_store(f"sqlite:///{self.root}/ondo.db")
        await self.store.open()
        self.bus = open_bus(self.bus_url, cluster=self.cluster)
        metrics = Metrics()
        self.supervisor = SourceSupervisor(
            self.store,
            BusEvents(self.bus, metrics),
            WallClock(),
            metrics.registry,
            self.root / "sources",
            256 * 1024,
        )
        await self.supervisor.start()

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        if self.bus is not None:
            await self.bus.close()
        if self.store is not None:
            await self.store.close()
        self.supervisor = self.bus = self.store = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def deploy(self, name: str, kind: str, settings: Mapping[str, Any]) -> None:
        """Validate the settings as deploy does, then store the source (the supervisor follows)."""
        spec = source_kind(kind).validate(settings, PlainWhere(self.root, f"sources.{name}"))
        assert self.store is not None
        await self.store.repos.sources.put(
            StoredSource(NAMESPACE, name, kind, spec, "app", time.time())
        )

    def status(self, name: str) -> SourceStatus:
        """The source's status; a blank one until the supervisor has followed the deploy."""
        assert self.supervisor is not None
        try:
            return self.supervisor.status(NAMESPACE, name)
        except NotFound:
            return SourceStatus(NAMESPACE, name, "", None)

    async def until(self, what: Any, timeout: float = 30.0) -> Any:
        """Wait until `what()` (sync or async) is truthy: a bound on waiting, not a timing test."""
        deadline = time.monotonic() + timeout
        while True:
            found = what()
            if asyncio.iscoroutine(found):
                found = await found
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout} s; last value {found!r}")
            await asyncio.sleep(0.05)

    async def events(self) -> list[CloudEvent]:
        assert self.bus is not None
        found: list[CloudEvent] = []
        after = 0
        while batch := await self.bus.read(after, 1000):
            found += [stored.event for stored in batch]
            after = batch[-1].seq
        return found

    async def wait_events(self, count: int, timeout: float = 30.0) -> list[CloudEvent]:
        """The bus's events once there are at least `count`."""

        async def enough() -> list[CloudEvent] | None:
            found = await self.events()
            return found if len(found) >= count else None

        result: list[CloudEvent] = await self.until(enough, timeout)
        return result

    async def connected(self, name: str) -> SourceStatus:
        status: SourceStatus = await self.until(
            lambda: self.status(name) if self.status(name).state == "connected" else None
        )
        return status
