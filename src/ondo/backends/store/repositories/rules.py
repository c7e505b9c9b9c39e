"""Rules: stored definitions, window state (counts, throttles, `for D` timers) and enforcement
records, with the repository contracts the rules domain uses.

The repositories store and read; the decisions (when a count fires, whether a throttle allows a
firing) are the domain's (rules/windows.py). Inside one unit of work (`Store.atomic`, serializable
on PostgreSQL) the reads and writes of a decision behave as if no other decision ran alongside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Stage = Literal["event", "timer"]
TimerStatus = Literal["pending", "fired", "cancelled"]
StateTable = Literal["rule_counts", "rule_throttles"]  # what retention walks rule by rule
DecisionKey = tuple[str, str, str, str]  # (namespace, rule, event source, event id)


def rule_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class StoredRule:
    """A rule as the store keeps it: who, where, the source text and the compiled JSON."""

    namespace: str
    name: str
    owner: str
    text: str | None
    spec: dict[str, Any]
    enabled: bool = True
    app: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    disabled_reason: str | None = None  # set when ondo disabled it (it failed), not a person

    @property
    def rule_id(self) -> str:
        return rule_id(self.namespace, self.name)

    def same_definition(self, other: StoredRule) -> bool:
        """True when both would behave the same (deploy's "unchanged")."""
        return (self.text, self.spec) == (other.text, other.spec)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "owner": self.owner,
            "text": self.text,
            "compiled": self.spec,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "app": self.app,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class PlannedAction:
    """One action of a firing, with the idempotency key the action queue dedupes on."""

    index: int
    kind: str
    target: str
    idempotency_key: str

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "target": self.target,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(frozen=True)
class Enforcement:
    """What one rule decided about one event (stage `event`) or its timer (stage `timer`)."""

    id: str
    namespace: str
    rule: str
    stage: Stage
    event_source: str
    event_id: str
    event_type: str
    at: float
    outcome: str
    detail: str
    actions: tuple[PlannedAction, ...] = field(default=())
    enqueued: bool = True
    subject: str = ""  # the event's subject (the data subject), if it has one
    grant: str = ""  # the consent grant that let the rule fire about `subject`, if one did

    @property
    def fired(self) -> bool:
        return self.outcome == "fired"

    @property
    def key(self) -> DecisionKey:
        return (self.namespace, self.rule, self.event_source, self.event_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "rule": self.rule,
            "stage": self.stage,
            "event": {"source": self.event_source, "id": self.event_id, "type": self.event_type},
            "at": self.at,
            "outcome": self.outcome,
            "detail": self.detail,
            "actions": [a.to_json() for a in self.actions],
            "enqueued": self.enqueued,
            "subject": self.subject,
            "grant": self.grant,
        }


@dataclass(frozen=True)
class SkippedEvent:
    """An event the rules dispatcher gave up on (no rule to blame): kept so `trace` says so."""

    namespace: str
    event_source: str
    event_id: str
    event_type: str
    at: float
    attempts: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "event_source": self.event_source,
            "at": self.at,
            "attempts": self.attempts,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Timer:
    """A `for D` timer: fires at `due_at` unless cancelled before."""

    id: int
    rule_id: str
    key: str
    started_at: float
    due_at: float
    event: dict[str, Any]  # the triggering event's JSON form
    status: TimerStatus


@dataclass(frozen=True)
class WindowState:
    """What a rule's windows hold now, for `ondo trace` and `rules show`."""

    counts: dict[str, int]  # events counted per key
    last_fired: dict[str, float]  # throttles: last firing per key
    pending_timers: tuple[Timer, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "last_fired": dict(self.last_fired),
            "pending_timers": [
                {"key": t.key, "started_at": t.started_at, "due_at": t.due_at}
                for t in self.pending_timers
            ],
        }


def event_json(text: str) -> dict[str, Any]:
    found = json.loads(text)
    if not isinstance(found, dict):
        raise ValueError(f"a stored timer's event is not a JSON object: {text[:80]!r}")
    return found


class RuleRepository(Protocol):
    """The `rules` table: one row per (namespace, name)."""

    async def find(self, namespace: str, name: str) -> StoredRule | None: ...

    async def in_namespace(self, namespace: str) -> list[StoredRule]:
        """By name."""
        ...

    async def all(self) -> list[StoredRule]:
        """By namespace, then name."""
        ...

    async def names_of_app(self, namespace: str, app: str) -> list[str]: ...

    async def put(self, rule: StoredRule, now: float) -> StoredRule:
        """Insert or replace; keeps the first `created_at`, sets `updated_at` to `now`."""
        ...

    async def delete(self, namespace: str, name: str) -> bool:
        """True when there was such a rule."""
        ...

    async def set_enabled(
        self, namespace: str, name: str, enabled: bool, now: float, reason: str | None = None
    ) -> bool:
        """Enable or disable; `reason`: why ondo disabled it (None clears it). True if found."""
        ...


class WindowRepository(Protocol):
    """Window state per rule id: counted events, throttles' last firings, `for D` timers."""

    async def add_count(
        self, rule_id: str, key: str, event_uid: str, at: float, expired: float
    ) -> int:
        """Forget the key's events counted at or before `expired`, count this one (once per
        `event_uid`), and return how many the key holds now."""
        ...

    async def reset_count(self, rule_id: str, key: str) -> None:
        """Forget every event counted for the key (the window fired)."""
        ...

    async def last_fired(self, rule_id: str, key: str) -> float | None: ...

    async def set_last_fired(self, rule_id: str, key: str, at: float) -> None: ...

    async def pending_timer(self, rule_id: str, key: str) -> Timer | None: ...

    async def add_timer(
        self, rule_id: str, key: str, started_at: float, due_at: float, event: dict[str, Any]
    ) -> Timer:
        """A new pending timer (at most one is pending per rule and key)."""
        ...

    async def set_timer_status(self, timer_id: int, status: TimerStatus) -> None: ...

    async def due_timers(self, now: float, limit: int = 100) -> list[Timer]:
        """Pending timers due by `now`, the earliest first."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest pending timer falls due (None: no timer is pending)."""
        ...

    async def forget_rule(self, rule_id: str) -> None:
        """Drop the rule's counts and throttles, cancel its pending timers."""
        ...

    async def state(self, rule_id: str) -> WindowState: ...

    # Retention: rows that can no longer change a decision (see rules/window_retention.py).

    async def next_rule_with_rows(self, table: StateTable, after: str) -> str | None:
        """The first rule id after `after` with rows in `table` (an index seek)."""
        ...

    async def prune_counts(self, rule_id: str, before: float, limit: int) -> int:
        """Delete up to `limit` of the rule's counted events at or before `before`."""
        ...

    async def prune_throttles(self, rule_id: str, before: float, limit: int) -> int:
        """Delete up to `limit` of the rule's throttles last fired at or before `before`."""
        ...

    async def prune_timers(self, before: float, limit: int) -> int:
        """Delete up to `limit` fired or cancelled timers due before `before`."""
        ...


class EnforcementRepository(Protocol):
    """Enforcement records (one per rule, stage and event) and the dispatcher's skipped events."""

    async def find(
        self, namespace: str, rule: str, stage: Stage, event_source: str, event_id: str
    ) -> Enforcement | None: ...

    async def find_many(
        self, stage: Stage, keys: Sequence[DecisionKey]
    ) -> dict[DecisionKey, Enforcement]:
        """The records of the stage for each (namespace, rule, event source, event id) key
        that has one, in one query per few hundred keys (a chunk's decisions taken before)."""
        ...

    async def add(self, record: Enforcement) -> None:
        """Raises DuplicateKey (or, in a serializable transaction, StoreConflict) when the rule
        already has a record for the stage and event."""
        ...

    async def add_many(self, records: Sequence[Enforcement]) -> None:
        """`add` of each record, in one statement per few hundred records; raises as `add`
        does if any of them has a record already (then none is kept by the transaction)."""
        ...

    async def for_event(self, event_id: str, event_source: str | None = None) -> list[Enforcement]:
        """In the order they were taken."""
        ...

    async def for_rule(self, namespace: str, rule: str, limit: int = 50) -> list[Enforcement]:
        """The latest first."""
        ...

    async def about(
        self, namespace: str, subject: str, *, since: float = 0.0, limit: int = 100
    ) -> list[Enforcement]:
        """The newest decisions about events whose subject is `subject` (who used whose data)."""
        ...

    async def add_skipped(self, skipped: SkippedEvent) -> None:
        """Record (or replace) that the dispatcher gave up on an event."""
        ...

    async def skipped(self, event_id: str, namespace: str) -> list[SkippedEvent]: ...

    async def prune(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest decisions taken before `before`; how many."""
        ...

    async def prune_skipped(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest skipped-event records before `before`."""
        ...
