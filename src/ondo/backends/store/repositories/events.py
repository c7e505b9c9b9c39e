"""The event index: where in the log each event is, for the lookups a log does not index.

A log such as NATS JetStream finds an event by its sequence number, not by its id. The rules
dispatcher writes one row per event it reads — (namespace, source, id) → seq, with the type and
when the bus received it — in the same unit of work as the chunk's decisions, when the bus asks
for it (`Bus.indexed_by_store`). The bus then answers `get(source, id)` and `by_id(id)` by
reading the seqs here and fetching those messages. Rows are pruned with the events' retention.

Writes are idempotent (a re-delivered chunk writes nothing new). A row may outlive its event
(the log expired it first, or a log was reset under a kept store): the bus checks each event it
fetches, so a stale row costs a miss, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IndexedEvent:
    """One event's place in the log."""

    namespace: str
    source: str
    id: str
    seq: int
    type: str
    received_at: float  # seconds since the epoch, by the bus's clock


class EventIndexRepository(Protocol):
    async def add(self, rows: Sequence[IndexedEvent]) -> None:
        """Index these events. A seq indexed already for the same event is left as it is (a
        re-delivered chunk); for another event it is replaced (the log was reset, its seqs
        start again at 1, and the store was kept)."""
        ...

    async def seqs_of(self, namespace: str, source: str, id: str, limit: int) -> list[int]:
        """The seqs of the event (namespace, source, id), lowest first, at most `limit`
        (more than one when the same event was sent again after the dedup window)."""
        ...

    async def seqs_by_id(self, id: str, namespace: str | None, limit: int) -> list[int]:
        """The seqs of every event with this id (in `namespace`, or any), lowest first."""
        ...

    async def highest_seq(self) -> int:
        """The highest seq indexed (0: none); the log after it is not indexed yet."""
        ...

    async def prune(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest rows received before `before`; returns how many.
        Assumes what the logs' pruning assumes: received_at grows with the seq."""
        ...
