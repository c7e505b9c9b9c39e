"""A NATS bus with the store's event index (a SQLite store), kept up as the rules dispatcher
keeps it: the events each append wrote are indexed right after it, by the rules engine's own
dispatch step (`RuleEngine.dispatch_now` with `index_events`, no rules defined)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from ondo.actions.base import ActionRequest
from ondo.backends.bus import DEFAULT_NAMESPACE, AppendResult, Bus, open_bus
from ondo.backends.store import Repositories, Store, open_store
from ondo.clock import ManualClock
from ondo.events import CloudEvent
from ondo.rules.definitions import RuleChecks
from ondo.rules.engine import RuleEngine


class NoJobs:
    async def enqueue_in(self, uow: Repositories, requests: Sequence[ActionRequest]) -> None:
        raise AssertionError("no rule is defined, so nothing fires")


def indexing_engine(store: Store, bus: Bus) -> RuleEngine:
    checks = RuleChecks(function_exists=lambda _n, _ns: True, validate_action=lambda _a, _ns: None)
    return RuleEngine(
        store, ManualClock(), CollectorRegistry(), NoJobs(), checks, bus, index_events=True
    )


class IndexedNatsBus:
    """Delegates to the NATS bus; `append` also indexes what it wrote (see the module doc)."""

    def __init__(self, url: str, cluster: str, store_path: Path, **options: Any) -> None:
        self.store = open_store(f"sqlite:///{store_path}")
        self.bus = open_bus(url, cluster=cluster, index=self.store.repos.event_index, **options)
        self.engine = indexing_engine(self.store, self.bus)
        self._opened = False

    async def open(self) -> None:
        if not self._opened:
            await self.store.open()
            self._opened = True

    async def append(
        self, events: Sequence[CloudEvent], namespace: str = DEFAULT_NAMESPACE
    ) -> list[AppendResult]:
        results = await self.bus.append(events, namespace)
        await self.catch_up()
        return results

    async def catch_up(self) -> None:
        """Index everything past the index's highest seq, as the dispatcher would."""
        await self.open()
        position = await self.store.repos.event_index.highest_seq()
        while batch := await self.bus.read(position, 50):
            await self.engine.dispatch_now(batch)
            position = batch[-1].seq

    async def close(self) -> None:
        await self.bus.close()
        if self._opened:
            await self.store.close()
            self._opened = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)
