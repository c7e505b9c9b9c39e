"""The bus contract: a durable, ordered, deduplicating event log with named consumer offsets.

Every backend (memory.py, sqlite.py, nats.py) implements `Bus`. Sequence numbers are global,
start at 1, only grow, and are never reused, so a consumer's offset (`committed`) stays valid
across restarts and pruning. Duplicates are detected on (namespace, source, id) within the
backend's dedup window. `append` returns only once the events are durable.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ondo.events import CloudEvent

DEFAULT_NAMESPACE = "default"
DEFAULT_DEDUP_WINDOW_S = 24 * 3600.0
DEFAULT_PRUNE_LIMIT = 500  # events one `prune` call deletes at most (one short transaction)


class StoredEvent:
    """An event as the log holds it: its position, when it arrived, and its namespace.

    A backend that stores the JSON form may hand it over undecoded (`from_body`): the event is
    decoded when first asked for. The rules dispatcher reads every event but looks past most by
    `type` alone, and decoding was a fifth of an ingested event's CPU. Immutable, like the
    frozen dataclass it replaces; equal when seq, event, received_at and namespace are.
    """

    __slots__ = ("_body", "_event", "namespace", "received_at", "seq", "type")

    seq: int
    received_at: float  # seconds since the epoch, by the bus's clock
    namespace: str
    type: str  # the event's type, known without decoding it
    _event: CloudEvent | None
    _body: bytes | None  # until decoded

    def __init__(
        self,
        seq: int,
        event: CloudEvent,
        received_at: float,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self._set(seq, received_at, namespace, event.type, event, None)

    @classmethod
    def from_body(
        cls, seq: int, body: bytes, type: str, received_at: float, namespace: str
    ) -> StoredEvent:
        """The event stored as `body` (CloudEvent.encoded), decoded when first asked for."""
        stored = cls.__new__(cls)
        stored._set(seq, received_at, namespace, type, None, body)
        return stored

    def _set(
        self,
        seq: int,
        received_at: float,
        namespace: str,
        type: str,
        event: CloudEvent | None,
        body: bytes | None,
    ) -> None:
        setattr_ = object.__setattr__  # past our own __setattr__, which refuses
        setattr_(self, "seq", seq)
        setattr_(self, "received_at", received_at)
        setattr_(self, "namespace", namespace)
        setattr_(self, "type", type)
        setattr_(self, "_event", event)
        setattr_(self, "_body", body)

    @property
    def event(self) -> CloudEvent:
        event: CloudEvent | None = self._event
        if event is None:  # two threads may both decode: the same value either way
            assert self._body is not None
            event = CloudEvent.decode(self._body)
            object.__setattr__(self, "_event", event)
            object.__setattr__(self, "_body", None)
        return event

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"StoredEvent is immutable (setting {name!r})")

    def _key(self) -> tuple[int, CloudEvent, float, str]:
        return (self.seq, self.event, self.received_at, self.namespace)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredEvent):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"StoredEvent(seq={self.seq!r}, event={self.event!r},"
            f" received_at={self.received_at!r}, namespace={self.namespace!r})"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "received_at": self.received_at,
            "namespace": self.namespace,
            "event": self.event.to_json_dict(),
        }


@dataclass(frozen=True)
class AppendResult:
    """One appended event: its seq, or the seq of the earlier copy when it is a duplicate.

    `seq` is None only for a duplicate whose original has already been pruned from the log.
    """

    seq: int | None
    duplicate: bool


@dataclass
class BusCounters:
    """What a backend has done since it was opened (for tests, metrics and benchmarks)."""

    append_calls: int = 0
    events_written: int = 0
    duplicates: int = 0
    transactions: int = 0  # commits to durable storage (group commit makes this < append_calls)


class EventLookup(Protocol):
    """Where events are in the log, for a backend whose log finds events by seq only (NATS).

    The store's event index (backends/store/repositories/events.py) is one; platform.py hands
    it to the bus. Seqs come lowest first; a seq may name an event the log no longer holds.
    """

    async def seqs_of(self, namespace: str, source: str, id: str, limit: int) -> list[int]: ...

    async def seqs_by_id(self, id: str, namespace: str | None, limit: int) -> list[int]: ...

    async def highest_seq(self) -> int:
        """The highest seq indexed (0: none): the log after it is not indexed yet."""
        ...


class Bus(Protocol):
    counters: BusCounters
    # True when the rules dispatcher must write each event it reads into the store's event
    # index (in the unit of work of its decisions): the backend's `get`/`by_id` read it.
    indexed_by_store: bool

    async def append(
        self, events: Sequence[CloudEvent], namespace: str = DEFAULT_NAMESPACE
    ) -> list[AppendResult]:
        """Append in order; durable when it returns. Raises PayloadTooLarge before writing any."""
        ...

    async def read(self, after_seq: int, limit: int = 500) -> list[StoredEvent]:
        """Events with seq > after_seq in seq order, at most `limit` (every namespace)."""
        ...

    async def wait(self, after_seq: int, timeout: float) -> None:
        """Return as soon as an event with seq > after_seq exists, or after `timeout` seconds."""
        ...

    async def last_seq(self) -> int:
        """The highest seq ever assigned (0 for an empty log)."""
        ...

    async def committed(self, consumer: str) -> int:
        """The last seq the named consumer acknowledged (0 if it never did)."""
        ...

    async def ack(self, consumer: str, seq: int) -> None:
        """Set the consumer's position to `seq`, durably; a lower seq rewinds it (replay)."""
        ...

    async def get(
        self, source: str, id: str, namespace: str = DEFAULT_NAMESPACE
    ) -> StoredEvent | None:
        """The first stored copy of the event (source, id), if still in the log."""
        ...

    async def by_id(self, id: str, namespace: str | None = None) -> list[StoredEvent]:
        """Every stored event with this id (ids are unique per source only), in seq order."""
        ...

    async def since(
        self,
        time: datetime,
        type_glob: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        namespace: str | None = None,
    ) -> list[StoredEvent]:
        """Events received at or after `time` (and after `after_seq`), seq order; for replay."""
        ...

    async def tail(
        self, limit: int, type_glob: str | None = None, namespace: str | None = None
    ) -> list[StoredEvent]:
        """The last `limit` events (matching `type_glob`), oldest first."""
        ...

    async def prune(self, before: datetime, limit: int = DEFAULT_PRUNE_LIMIT) -> int:
        """Delete up to `limit` of the oldest events received before `before`; returns how many
        (fewer than `limit`: none is left). Seqs are never reused. The retention service calls
        this in small batches; a backend that expires events itself (by age) may return 0."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release the backend; later calls raise BusClosed."""
        ...


class ReplayTarget(Protocol):
    """What re-dispatches replayed events (the dispatcher registers one on the platform)."""

    async def replay(self, events: Sequence[StoredEvent], rule: str | None) -> int:
        """Dispatch `events` again (to one rule, or all); returns how many were dispatched."""
        ...


def type_matches(type_glob: str | None, event_type: str) -> bool:
    """Shell-style glob on the event type (`*`, `?`, `[…]`), case-sensitive like SQLite GLOB."""
    return type_glob is None or fnmatch.fnmatchcase(event_type, type_glob)
