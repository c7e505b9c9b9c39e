"""Enforcement records: what each rule decided about each event, and the actions it asked for.

One row per (rule, stage, event): stage `event` is the decision taken when the dispatcher saw the
event; stage `timer` is the firing of a `for D` timer that the event started. The row doubles as
the idempotency record: a re-delivered event finds its decision here instead of counting again.
A firing's action jobs are written in the same transaction as its record, so `enqueued` is
always 1 (the column, and `event`, stay for the rows of versions that enqueued after the commit).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from ondo.backends.store.repositories.rules import Enforcement, PlannedAction, Stage
from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite.migrations import MIGRATIONS
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


_COLUMNS = (
    "id, namespace, rule, stage, event_source, event_id, event_type, at, outcome, detail,"
    " actions, enqueued"
)


def _from_row(row: sqlite3.Row | tuple[Any, ...]) -> Enforcement:
    v = tuple(row)
    return Enforcement(
        id=v[0],
        namespace=v[1],
        rule=v[2],
        stage=v[3],
        event_source=v[4],
        event_id=v[5],
        event_type=v[6],
        at=v[7],
        outcome=v[8],
        detail=v[9],
        actions=tuple(PlannedAction(**a) for a in json.loads(v[10])),
        enqueued=bool(v[11]),
    )


def find(
    conn: sqlite3.Connection,
    namespace: str,
    rule: str,
    stage: Stage,
    event_source: str,
    event_id: str,
) -> Enforcement | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM rule_enforcements WHERE namespace = ? AND rule = ?"
        " AND stage = ? AND event_source = ? AND event_id = ?",
        (namespace, rule, stage, event_source, event_id),
    ).fetchone()
    return _from_row(row) if row is not None else None


def record(conn: sqlite3.Connection, rec: Enforcement) -> Enforcement:
    """Insert `rec` inside the caller's transaction (with a firing's jobs)."""
    conn.execute(
        f"INSERT INTO rule_enforcements ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rec.id,
            rec.namespace,
            rec.rule,
            rec.stage,
            rec.event_source,
            rec.event_id,
            rec.event_type,
            rec.at,
            rec.outcome,
            rec.detail,
            json.dumps([a.to_json() for a in rec.actions]),
            int(rec.enqueued),
        ),
    )
    return rec


def new_id() -> str:
    return "enf-" + uuid7_hex()


class EnforcementLog:
    """Reads of the enforcement table (writes happen inside the engine's transactions)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        db.migrate(MIGRATIONS)  # every domain's: idempotent

    def for_event(self, event_id: str, event_source: str | None = None) -> list[Enforcement]:
        sql = f"SELECT {_COLUMNS} FROM rule_enforcements WHERE event_id = ?"
        params: list[Any] = [event_id]
        if event_source is not None:
            sql += " AND event_source = ?"
            params.append(event_source)
        rows = self.db.query(sql + " ORDER BY at, rule, stage", params)
        return [_from_row(r) for r in rows]

    def record_skipped(
        self, namespace: str, event: dict[str, Any], at: float, attempts: int, reason: str
    ) -> None:
        """An event the dispatcher gave up on (no rule to blame): kept so `trace` says so."""
        self.db.execute(
            "INSERT OR REPLACE INTO rule_skipped_events"
            " (namespace, event_source, event_id, event_type, at, attempts, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                namespace,
                str(event.get("source")),
                str(event.get("id")),
                str(event.get("type", "")),
                at,
                attempts,
                reason,
            ),
        )

    def skipped(self, event_id: str, namespace: str) -> list[dict[str, Any]]:
        """The dispatcher's give-ups on an event: when, after how many attempts, and why."""
        rows = self.db.query(
            "SELECT event_source, at, attempts, reason FROM rule_skipped_events"
            " WHERE event_id = ? AND namespace = ? ORDER BY at",
            (event_id, namespace),
        )
        return [dict(row) for row in rows]

    def for_rule(self, namespace: str, rule: str, limit: int = 50) -> list[Enforcement]:
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM rule_enforcements WHERE namespace = ? AND rule = ?"
            " ORDER BY at DESC LIMIT ?",
            (namespace, rule, limit),
        )
        return [_from_row(r) for r in rows]
