"""A real supervisor (SQLite store, memory bus) running one ftp or bucket source, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ondo.backends.bus.memory import MemoryBus
from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import ManualClock
from ondo.events import CloudEvent
from ondo.metrics import Metrics
from ondo.sources.base import PlainWhere
from ondo.sources.kinds import source_kind
from ondo.sources.supervisor import BusEvents, SourceStatus, SourceSupervisor

WAIT_S = 20.0  # a bound on waiting: a wait that never ends fails instead of hanging


class Sources:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = ManualClock(1_800_000_000.0)
        self.store: Store = open_store(f"sqlite:///{root / 'ondo.db'}")
        self.bus = MemoryBus()
        metrics = Metrics()
        self.supervisor = SourceSupervisor(
            self.store,
            BusEvents(self.bus, metrics),
            self.clock,
            metrics.registry,
            root / "sources",
            256 * 1024,
        )

    async def __aenter__(self) -> Sources:
        await self.store.open()
        await self.supervisor.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.supervisor.stop()
        await self.bus.close()
        await self.store.close()

    async def deploy(self, name: str, kind: str, settings: dict[str, Any]) -> StoredSource:
        """Validate as `ondo deploy` does, store, and wait until the source is attached."""
        spec = source_kind(kind).validate(settings, PlainWhere(self.root, f"sources.{name}"))
        source = StoredSource("default", name, kind, spec, app="test")
        await self.store.repos.sources.put(source)
        await self.until(lambda: (s := self.status_of(name)) is not None and s.state != "starting")
        return source

    async def remove(self, name: str) -> None:
        await self.store.repos.sources.delete("default", name)
        await self.until(lambda: self.status_of(name) is None)

    def status_of(self, name: str) -> SourceStatus | None:
        found = [s for s in self.supervisor.statuses() if s.name == name]
        return found[0] if found else None

    def status(self, name: str) -> SourceStatus:
        status = self.status_of(name)
        assert status is not None, f"source {name} is not running"
        return status

    async def until(self, check: Callable[[], object]) -> Any:
        async with asyncio.timeout(WAIT_S):
            while not (found := check()):
                await asyncio.sleep(0.02)
        return found

    async def events(self, type_: str | None = None) -> list[CloudEvent]:
        found = [stored.event for stored in await self.bus.read(0, limit=10_000)]
        return [e for e in found if type_ is None or e.type == type_]

    async def wait_events(self, count: int, type_: str | None = None) -> list[CloudEvent]:
        async with asyncio.timeout(WAIT_S):
            while len(found := await self.events(type_)) < count:
                await asyncio.sleep(0.02)
        return found
