"""An in-memory bus with the same semantics as the durable ones, for tests and the rule tester.

Nothing survives the process; "durable when append returns" holds only within the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from ondo.backends.bus.base import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_NAMESPACE,
    DEFAULT_PRUNE_LIMIT,
    AppendResult,
    BusCounters,
    StoredEvent,
    type_matches,
)
from ondo.backends.bus.waiters import Waiters
from ondo.errors import BusClosed
from ondo.events import DEFAULT_MAX_EVENT_BYTES, CloudEvent

DedupKey = tuple[str, str, str]  # (namespace, source, id)


class MemoryBus:
    indexed_by_store = False  # it indexes its own lookups

    def __init__(
        self,
        *,
        dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = BusCounters()
        self.dedup_window_s = dedup_window_s
        self.max_event_bytes = max_event_bytes
        self._clock = clock
        self._log: list[StoredEvent] = []  # seq order; pruning removes from the front
        self._dedup: dict[DedupKey, tuple[int, float]] = {}
        self._offsets: dict[str, int] = {}
        self._last_seq = 0
        self._lock = threading.Lock()
        self._waiters = Waiters()
        self._closed = False

    async def append(
        self, events: Sequence[CloudEvent], namespace: str = DEFAULT_NAMESPACE
    ) -> list[AppendResult]:
        self._check_open()
        for event in events:
            event.check_size(self.max_event_bytes)
        with self._lock:
            results = [self._append_one(event, namespace) for event in events]
            self.counters.append_calls += 1
            self.counters.transactions += 1
            last = self._last_seq
        self._waiters.notify(last)
        return results

    def _append_one(self, event: CloudEvent, namespace: str) -> AppendResult:
        now = self._clock()
        key = (namespace, event.source, event.id)
        earlier = self._dedup.get(key)
        if earlier is not None and earlier[1] >= now - self.dedup_window_s:
            self.counters.duplicates += 1
            still_logged = bool(self._log) and self._log[0].seq <= earlier[0]
            return AppendResult(earlier[0] if still_logged else None, True)
        self._last_seq += 1
        self._log.append(StoredEvent(self._last_seq, event, now, namespace))
        self._dedup[key] = (self._last_seq, now)
        self.counters.events_written += 1
        return AppendResult(self._last_seq, False)

    async def read(self, after_seq: int, limit: int = 500) -> list[StoredEvent]:
        self._check_open()
        with self._lock:
            start = self._index_after(after_seq)
            return self._log[start : start + limit]

    def _index_after(self, after_seq: int) -> int:
        if not self._log:
            return 0
        return max(0, min(len(self._log), after_seq - self._log[0].seq + 1))

    async def wait(self, after_seq: int, timeout: float) -> None:
        self._check_open()
        await self._waiters.wait(after_seq, timeout, lambda: self._last_seq)

    async def last_seq(self) -> int:
        return self._last_seq

    async def committed(self, consumer: str) -> int:
        self._check_open()
        return self._offsets.get(consumer, 0)

    async def ack(self, consumer: str, seq: int) -> None:
        self._check_open()
        self._offsets[consumer] = seq

    async def get(
        self, source: str, id: str, namespace: str = DEFAULT_NAMESPACE
    ) -> StoredEvent | None:
        found = [s for s in await self.by_id(id, namespace) if s.event.source == source]
        return found[0] if found else None

    async def by_id(self, id: str, namespace: str | None = None) -> list[StoredEvent]:
        self._check_open()
        with self._lock:
            return [
                s
                for s in self._log
                if s.event.id == id and (namespace is None or s.namespace == namespace)
            ]

    async def since(
        self,
        time: datetime,
        type_glob: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        namespace: str | None = None,
    ) -> list[StoredEvent]:
        self._check_open()
        cutoff = time.timestamp()
        with self._lock:
            found = [
                s
                for s in self._log[self._index_after(after_seq) :]
                if s.received_at >= cutoff and _selected(s, type_glob, namespace)
            ]
        return found[:limit]

    async def tail(
        self, limit: int, type_glob: str | None = None, namespace: str | None = None
    ) -> list[StoredEvent]:
        self._check_open()
        with self._lock:
            found = [s for s in self._log if _selected(s, type_glob, namespace)]
        return found[-limit:] if limit > 0 else []

    async def prune(self, before: datetime, limit: int = DEFAULT_PRUNE_LIMIT) -> int:
        # From the front only: the log stays a run of consecutive seqs (see `_index_after`).
        cutoff = before.timestamp()
        with self._lock:
            removed = 0
            while removed < min(limit, len(self._log)) and self._log[removed].received_at < cutoff:
                removed += 1
            del self._log[:removed]
            horizon = self._clock() - self.dedup_window_s
            self._dedup = {k: v for k, v in self._dedup.items() if v[1] >= horizon}
        return removed

    async def close(self) -> None:
        self._closed = True
        self._waiters.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the event bus is closed (the platform is shutting down)")


def _selected(stored: StoredEvent, type_glob: str | None, namespace: str | None) -> bool:
    if namespace is not None and stored.namespace != namespace:
        return False
    return type_matches(type_glob, stored.event.type)
