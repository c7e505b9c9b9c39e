"""Enforcement records: what each rule decided about each event, and the actions it asked for.

One record per (rule, stage, event): stage `event` is the decision taken when the dispatcher saw
the event; stage `timer` is the firing of a `for D` timer that the event started. The record
doubles as the idempotency record: a re-delivered event finds its decision instead of counting
again. A firing's action jobs are written in the same unit of work as its record, so `enqueued`
is always true (the field stays for the records of versions that enqueued after the commit).
The records themselves are store records (backends/store/repositories/rules.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ondo.backends.store import Store
from ondo.backends.store.repositories.rules import Enforcement, SkippedEvent
from ondo.ids import uuid7_hex

FIRED = "fired"
SUPPRESSED = "suppressed"
DROPPED_LOOP = "dropped: loop"
# Decisions that are not firings; kept so `ondo trace` can say what happened to an event.
COUNTED = "counted"
TIMER_STARTED = "timer started"
TIMER_PENDING = "timer already pending"
TIMER_CANCELLED = "timer cancelled"
CONDITION_FALSE = "condition false"
ERROR = "error"
FAILED = "failed"  # the rule raised on the event and was disabled (see isolation.py)


def idempotency_key(event_source: str, event_id: str, rule_id: str, index: int) -> str:
    """The key that makes an action exactly-once per (event, rule, action index)."""
    raw = "\x00".join((event_source, event_id, rule_id, str(index)))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def new_id() -> str:
    return "enf-" + uuid7_hex()


class EnforcementLog:
    """Reading the decisions (written inside the engine's units of work), and recording the
    events the dispatcher gave up on."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def for_event(self, event_id: str, event_source: str | None = None) -> list[Enforcement]:
        return await self.store.repos.enforcements.for_event(event_id, event_source)

    async def for_rule(self, namespace: str, rule: str, limit: int = 50) -> list[Enforcement]:
        return await self.store.repos.enforcements.for_rule(namespace, rule, limit)

    async def record_skipped(
        self, namespace: str, event: dict[str, Any], at: float, attempts: int, reason: str
    ) -> None:
        """An event the dispatcher gave up on (no rule to blame): kept so `trace` says so."""
        skipped = SkippedEvent(
            namespace=namespace,
            event_source=str(event.get("source")),
            event_id=str(event.get("id")),
            event_type=str(event.get("type", "")),
            at=at,
            attempts=attempts,
            reason=reason,
        )
        await self.store.repos.enforcements.add_skipped(skipped)

    async def skipped(self, event_id: str, namespace: str) -> list[dict[str, Any]]:
        """The dispatcher's give-ups on an event: when, after how many attempts, and why."""
        found = await self.store.repos.enforcements.skipped(event_id, namespace)
        return [s.to_json() for s in found]
