"""Retention: every kind of record is deleted once older than its retention, off the hot path.

Each kind registers a `Prunable` with its retention age. A sweep runs every `every_s` seconds
of the platform clock: for each kind it deletes the oldest rows older than `now - age`, at most
`batch` per statement (one short autocommit statement through an index), pausing between
statements so that the hot path's own statements get their turn, until a statement finds fewer
than `batch` (nothing left).

A kind's watermark (the time before which rows are gone) is raised in the store at the start of
every sweep, before anything is deleted, so that `ondo trace`, `ondo events show` and friends can
say "deleted by retention" instead of "not found", even while the sweep runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from ondo.backends.bus import Bus
from ondo.backends.store.repositories.retention import WatermarkRepository
from ondo.clock import Clock
from ondo.units import duration_text

log = logging.getLogger("ondo.retention")

BATCH = 500  # rows one statement deletes at most
EVERY_S = 10.0  # platform-clock seconds between sweeps
BATCH_PAUSE_S = 0.001  # between two statements: lets the hot path take the store's lock


class Prunable(Protocol):
    """One kind of record that retention deletes (e.g. events, invocation records)."""

    @property
    def name(self) -> str: ...

    async def prune(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest rows older than `before`; returns how many
        (fewer than `limit`: none is left)."""
        ...


@dataclass(frozen=True)
class Calling:
    """An asynchronous prune (a store repository's `prune(before, limit)`) as a kind."""

    name: str
    fn: Callable[[float, int], Awaitable[int]]

    async def prune(self, before: float, limit: int) -> int:
        return await self.fn(before, limit)


@dataclass(frozen=True)
class EventLog:
    """The bus's events as a prunable kind."""

    bus: Bus
    name: str = "events"

    async def prune(self, before: float, limit: int) -> int:
        return await self.bus.prune(datetime.fromtimestamp(before, UTC), limit)


@dataclass(frozen=True)
class Retained:
    prunable: Prunable
    age_s: float  # 0: `before` is now (the kind decides for itself what is stale)
    label: str  # what people call it: "events", "invocation records"


class RetentionService:
    """A platform service: sweeps every registered kind now and then; see the module doc."""

    def __init__(
        self,
        clock: Clock,
        watermarks: WatermarkRepository,
        registry: CollectorRegistry,
        *,
        batch: int = BATCH,
        every_s: float = EVERY_S,
    ) -> None:
        self.clock = clock
        self.watermarks = watermarks
        self.batch = batch
        self.every_s = every_s
        self.kinds: dict[str, Retained] = {}
        self.pruned = Counter(
            "ondo_retention_pruned_rows",
            "Rows deleted by retention, per kind of record",
            ["kind"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def register(self, prunable: Prunable, age_s: float, label: str) -> None:
        """Delete `prunable`'s rows once older than `age_s` (math.inf: keep them forever)."""
        if math.isinf(age_s):
            return
        self.kinds[prunable.name] = Retained(prunable, age_s, label)
        self.pruned.labels(prunable.name)  # listed on /metrics from the start, at 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ondo-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            due = self.clock.now() + self.every_s
            await self.sweep()
            while self.clock.now() < due:
                await self.clock.sleep(due - self.clock.now())

    async def sweep(self) -> dict[str, int]:
        """Delete what every kind holds past its retention; returns how many rows per kind."""
        removed: dict[str, int] = {}
        for name, kind in self.kinds.items():
            try:
                removed[name] = await self._sweep_kind(kind)
            except Exception:  # a locked or failing store: try again next sweep
                log.exception("retention could not delete old %s", kind.label)
        if any(removed.values()):
            log.info(
                "retention deleted %s",
                ", ".join(f"{n} {self.kinds[k].label}" for k, n in removed.items() if n),
            )
        return removed

    async def _sweep_kind(self, kind: Retained) -> int:
        now = self.clock.now()
        before, total = now - kind.age_s, 0
        if kind.age_s > 0:
            # Before deleting: a lookup that misses a row this sweep deletes must already find
            # the watermark past it (it would say "not found" instead of "deleted").
            await self.watermarks.raise_to(kind.prunable.name, before, now)
        while True:
            removed = await kind.prunable.prune(before, self.batch)
            total += removed
            self.pruned.labels(kind.prunable.name).inc(removed)
            if removed < self.batch:
                return total
            await asyncio.sleep(BATCH_PAUSE_S)

    # --- what lookups that miss say ------------------------------------------------------

    async def deleted(self, name: str, at: float | None) -> str | None:
        """Why something of kind `name` made at `at` is missing, if retention deleted it:
        "older than the retention of events (7 days)"; None if it would not have been."""
        kind = self.kinds.get(name)
        if kind is None or at is None:
            return None
        watermark = await self.watermarks.get(name)
        if watermark is None or at >= watermark:
            return None
        return f"older than the retention of {kind.label} ({duration_text(kind.age_s)})"

    async def may_have_deleted(self, name: str) -> str | None:
        """For a miss whose time is unknown: "the retention of events (7 days)" once retention
        has swept that kind, else None."""
        kind = self.kinds.get(name)
        if kind is None or await self.watermarks.get(name) is None:
            return None
        return f"the retention of {kind.label} ({duration_text(kind.age_s)})"
