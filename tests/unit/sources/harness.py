"""A real source supervisor (SQLite store, memory bus, manual clock) for one kind's unit tests.

`restart()` stops the supervisor and starts a fresh one on the same store and bus, as a new
ondo process would: whatever a source remembers across it went through `ctx.save_state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ondo.backends.bus import open_bus
from ondo.backends.store import open_store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import ManualClock
from ondo.events import DEFAULT_MAX_EVENT_BYTES, CloudEvent
from ondo.metrics import Metrics
from ondo.sources.base import PlainWhere
from ondo.sources.kinds import source_kind
from ondo.sources.supervisor import BusEvents, SourceStatus, SourceSupervisor

WAIT_S = 20.0  # a wait that never ends is a failure, not a hang


class SourceHarness:
    def __init__(self, root: Path, start: float) -> None:
        self.root = root
        self.clock = ManualClock(start)
        self.store = open_store(f"sqlite:///{root / 'ondo.db'}")
        self.bus = open_bus("memory://", clock=self.clock.now)
        self.metrics = Metrics()
        self.supervisor = self._supervisor()

    def _supervisor(self) -> SourceSupervisor:
        return SourceSupervisor(
            self.store,
            BusEvents(self.bus, self.metrics),
            self.clock,
            Metrics().registry,
            self.root / "sources",
            DEFAULT_MAX_EVENT_BYTES,
        )

    async def __aenter__(self) -> SourceHarness:
        await self.store.open()
        await self.supervisor.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.supervisor.stop()
        await self.bus.close()
        await self.store.close()

    async def deploy(
        self, name: str, kind: str, settings: dict[str, Any], wait: bool = True
    ) -> StoredSource:
        """Validate as deploy does, store, and (`wait`) wait until the supervisor runs it."""
        spec = source_kind(kind).validate(settings, PlainWhere(self.root, f"sources.{name}"))
        source = StoredSource("default", name, kind, spec, app="test")
        await self.store.repos.sources.put(source)
        if wait:
            await self.until(lambda: self._runs(name, spec))
        return source

    async def restart(self) -> None:
        await self.supervisor.stop()
        self.supervisor = self._supervisor()
        await self.supervisor.start()

    def _runs(self, name: str, spec: dict[str, Any]) -> bool:
        if self._status(name) is None:
            return False
        return dict(self.supervisor.settings("default", name).spec) == spec

    def _status(self, name: str) -> SourceStatus | None:
        found = [s for s in self.supervisor.statuses() if s.name == name]
        return found[0] if found else None

    def status(self, name: str) -> SourceStatus:
        """The running source's status (fails when it does not run)."""
        status = self._status(name)
        assert status is not None, f"source {name} is not running"
        return status

    async def until(self, check: Callable[[], object]) -> Any:
        async with asyncio.timeout(WAIT_S):
            while not (found := check()):
                await asyncio.sleep(0.01)
        return found

    async def until_detail(self, name: str, detail: str) -> None:
        """Wait until the source says `detail` (e.g. which tick it waits for next)."""
        await self.until(lambda: (s := self._status(name)) is not None and s.detail == detail)

    async def events(self, source: str | None = None) -> list[CloudEvent]:
        found = [stored.event for stored in await self.bus.read(0, limit=10_000)]
        return [e for e in found if source is None or e.source == source]
