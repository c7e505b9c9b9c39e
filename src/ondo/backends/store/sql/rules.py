"""Rules in SQL, one text for SQLite and PostgreSQL (see repositories/rules.py).

Between processes: a decision reads a window (how many counted, when last fired, whether a
timer is pending) and writes it back, so it runs in a serializable transaction
(`Store.atomic`); PostgreSQL then aborts one of two decisions that read what the other wrote,
and `atomic` runs it again on the state the first committed. SQLite has one writer at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.rules import (
    DecisionKey,
    Enforcement,
    PlannedAction,
    SkippedEvent,
    Stage,
    StateTable,
    StoredRule,
    Timer,
    TimerStatus,
    WindowState,
    event_json,
)

_RULE_COLUMNS = (
    "namespace, name, owner, text, spec, enabled, app, created_at, updated_at, disabled_reason"
)
_PUT_RULE = (
    f"INSERT INTO rules ({_RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace, name) DO UPDATE SET owner = excluded.owner,"
    " text = excluded.text, spec = excluded.spec, enabled = excluded.enabled,"
    " app = excluded.app, updated_at = excluded.updated_at,"
    " disabled_reason = excluded.disabled_reason"
    " RETURNING created_at"
)


def _rule(row: Row) -> StoredRule:
    return StoredRule(
        namespace=row["namespace"],
        name=row["name"],
        owner=row["owner"],
        text=row["text"],
        spec=json.loads(row["spec"]),
        enabled=bool(row["enabled"]),
        app=row["app"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        disabled_reason=row["disabled_reason"],
    )


class SqlRuleRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def find(self, namespace: str, name: str) -> StoredRule | None:
        row = await self._sql.fetch_one(
            f"SELECT {_RULE_COLUMNS} FROM rules WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return _rule(row) if row is not None else None

    async def in_namespace(self, namespace: str) -> list[StoredRule]:
        rows = await self._sql.fetch(
            f"SELECT {_RULE_COLUMNS} FROM rules WHERE namespace = ? ORDER BY name", (namespace,)
        )
        return [_rule(r) for r in rows]

    async def all(self) -> list[StoredRule]:
        rows = await self._sql.fetch(f"SELECT {_RULE_COLUMNS} FROM rules ORDER BY namespace, name")
        return [_rule(r) for r in rows]

    async def names_of_app(self, namespace: str, app: str) -> list[str]:
        rows = await self._sql.fetch(
            "SELECT name FROM rules WHERE namespace = ? AND app = ? ORDER BY name", (namespace, app)
        )
        return [str(r[0]) for r in rows]

    async def put(self, rule: StoredRule, now: float) -> StoredRule:
        created = await self._sql.fetch_value(
            _PUT_RULE,
            (
                rule.namespace,
                rule.name,
                rule.owner,
                rule.text,
                # In the author's key order: `ondo rules test` names a pattern's first failing
                # field, which must not change when a process reloads the rule from the store.
                json.dumps(rule.spec),
                int(rule.enabled),
                rule.app,
                float(now),
                float(now),
                rule.disabled_reason,
            ),
        )
        return StoredRule(
            namespace=rule.namespace,
            name=rule.name,
            owner=rule.owner,
            text=rule.text,
            spec=rule.spec,
            enabled=rule.enabled,
            app=rule.app,
            created_at=float(created),
            updated_at=float(now),
            disabled_reason=rule.disabled_reason,
        )

    async def delete(self, namespace: str, name: str) -> bool:
        changed = await self._sql.execute(
            "DELETE FROM rules WHERE namespace = ? AND name = ?", (namespace, name)
        )
        return changed > 0

    async def set_enabled(
        self, namespace: str, name: str, enabled: bool, now: float, reason: str | None = None
    ) -> bool:
        changed = await self._sql.execute(
            "UPDATE rules SET enabled = ?, disabled_reason = ?, updated_at = ?"
            " WHERE namespace = ? AND name = ?",
            (int(enabled), reason, float(now), namespace, name),
        )
        return changed > 0


_TIMER_COLUMNS = "id, rule_id, key, started_at, due_at, event, status"


def _timer(row: Row) -> Timer:
    return Timer(
        id=int(row["id"]),
        rule_id=row["rule_id"],
        key=row["key"],
        started_at=float(row["started_at"]),
        due_at=float(row["due_at"]),
        event=event_json(row["event"]),
        status=row["status"],
    )


class SqlWindowRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add_count(
        self, rule_id: str, key: str, event_uid: str, at: float, expired: float
    ) -> int:
        sql = self._sql
        await sql.execute(
            "DELETE FROM rule_counts WHERE rule_id = ? AND key = ? AND at <= ?",
            (rule_id, key, float(expired)),
        )
        await sql.execute(
            "INSERT INTO rule_counts (rule_id, key, event_uid, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (rule_id, event_uid) DO NOTHING",
            (rule_id, key, event_uid, float(at)),
        )
        seen = await sql.fetch_value(
            "SELECT COUNT(*) FROM rule_counts WHERE rule_id = ? AND key = ?", (rule_id, key)
        )
        return int(seen)

    async def reset_count(self, rule_id: str, key: str) -> None:
        await self._sql.execute(
            "DELETE FROM rule_counts WHERE rule_id = ? AND key = ?", (rule_id, key)
        )

    async def last_fired(self, rule_id: str, key: str) -> float | None:
        found = await self._sql.fetch_value(
            "SELECT last_fired_at FROM rule_throttles WHERE rule_id = ? AND key = ?",
            (rule_id, key),
        )
        return float(found) if found is not None else None

    async def set_last_fired(self, rule_id: str, key: str, at: float) -> None:
        await self._sql.execute(
            "INSERT INTO rule_throttles (rule_id, key, last_fired_at) VALUES (?, ?, ?)"
            " ON CONFLICT (rule_id, key) DO UPDATE SET last_fired_at = excluded.last_fired_at",
            (rule_id, key, float(at)),
        )

    async def pending_timer(self, rule_id: str, key: str) -> Timer | None:
        row = await self._sql.fetch_one(
            f"SELECT {_TIMER_COLUMNS} FROM rule_timers"
            " WHERE rule_id = ? AND key = ? AND status = 'pending'",
            (rule_id, key),
        )
        return _timer(row) if row is not None else None

    async def add_timer(
        self, rule_id: str, key: str, started_at: float, due_at: float, event: dict[str, Any]
    ) -> Timer:
        timer_id = await self._sql.fetch_value(
            "INSERT INTO rule_timers (rule_id, key, started_at, due_at, event, status)"
            " VALUES (?, ?, ?, ?, ?, 'pending') RETURNING id",
            (rule_id, key, float(started_at), float(due_at), json.dumps(event, sort_keys=True)),
        )
        return Timer(int(timer_id), rule_id, key, started_at, due_at, event, "pending")

    async def set_timer_status(self, timer_id: int, status: TimerStatus) -> None:
        await self._sql.execute(
            "UPDATE rule_timers SET status = ? WHERE id = ?", (status, int(timer_id))
        )

    async def due_timers(self, now: float, limit: int = 100) -> list[Timer]:
        rows = await self._sql.fetch(
            f"SELECT {_TIMER_COLUMNS} FROM rule_timers WHERE status = 'pending' AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?",
            (float(now), int(limit)),
        )
        return [_timer(r) for r in rows]

    async def next_due(self) -> float | None:
        found = await self._sql.fetch_value(
            "SELECT MIN(due_at) FROM rule_timers WHERE status = 'pending'"
        )
        return float(found) if found is not None else None

    async def forget_rule(self, rule_id: str) -> None:
        sql = self._sql
        await sql.execute("DELETE FROM rule_counts WHERE rule_id = ?", (rule_id,))
        await sql.execute("DELETE FROM rule_throttles WHERE rule_id = ?", (rule_id,))
        await sql.execute(
            "UPDATE rule_timers SET status = 'cancelled' WHERE rule_id = ? AND status = 'pending'",
            (rule_id,),
        )

    # --- retention (rows that can no longer change a decision) -----------------------

    async def next_rule_with_rows(self, table: StateTable, after: str) -> str | None:
        if table not in ("rule_counts", "rule_throttles"):
            raise ValueError(f"not a rule state table: {table!r}")
        found = await self._sql.fetch_value(
            f"SELECT MIN(rule_id) FROM {table} WHERE rule_id > ?", (after,)
        )
        return None if found is None else str(found)

    async def prune_counts(self, rule_id: str, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM rule_counts WHERE rule_id = ? AND event_uid IN (SELECT event_uid"
            " FROM rule_counts WHERE rule_id = ? AND at <= ? LIMIT ?)",
            (rule_id, rule_id, float(before), limit),
        )

    async def prune_throttles(self, rule_id: str, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM rule_throttles WHERE rule_id = ? AND key IN (SELECT key"
            " FROM rule_throttles WHERE rule_id = ? AND last_fired_at <= ? LIMIT ?)",
            (rule_id, rule_id, float(before), limit),
        )

    async def prune_timers(self, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM rule_timers WHERE id IN (SELECT id FROM rule_timers"
            " WHERE status IN ('fired', 'cancelled') AND due_at < ? LIMIT ?)",
            (float(before), limit),
        )

    async def state(self, rule_id: str) -> WindowState:
        sql = self._sql
        counts = await sql.fetch(
            "SELECT key, COUNT(*) FROM rule_counts WHERE rule_id = ? GROUP BY key ORDER BY key",
            (rule_id,),
        )
        throttles = await sql.fetch(
            "SELECT key, last_fired_at FROM rule_throttles WHERE rule_id = ? ORDER BY key",
            (rule_id,),
        )
        timers = await sql.fetch(
            f"SELECT {_TIMER_COLUMNS} FROM rule_timers WHERE rule_id = ? AND status = 'pending'"
            " ORDER BY due_at",
            (rule_id,),
        )
        return WindowState(
            counts={str(r[0]): int(r[1]) for r in counts},
            last_fired={str(r[0]): float(r[1]) for r in throttles},
            pending_timers=tuple(_timer(r) for r in timers),
        )


_ENFORCEMENT_COLUMNS = (
    "id, namespace, rule, stage, event_source, event_id, event_type, at, outcome, detail,"
    " actions, enqueued, subject, grant_id"
)
_ENFORCEMENT_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SKIPPED_COLUMNS = "namespace, event_source, event_id, event_type, at, attempts, reason"
# A chunk's decisions taken before, by the unique (namespace, rule, stage, source, id) index.
_FIND_MANY = (
    f"SELECT {_ENFORCEMENT_COLUMNS} FROM rule_enforcements WHERE stage = ?"
    " AND (namespace, rule, event_source, event_id) IN (VALUES {values})"
)
FIND_CHUNK = 256  # keys per lookup (4 parameters each)
ADD_CHUNK = 200  # records per INSERT (14 parameters each)


def _enforcement_params(record: Enforcement) -> tuple[Any, ...]:
    return (
        record.id,
        record.namespace,
        record.rule,
        record.stage,
        record.event_source,
        record.event_id,
        record.event_type,
        float(record.at),
        record.outcome,
        record.detail,
        json.dumps([a.to_json() for a in record.actions]),
        int(record.enqueued),
        record.subject,
        record.grant,
    )


def _enforcement(row: Row) -> Enforcement:
    return Enforcement(
        id=row["id"],
        namespace=row["namespace"],
        rule=row["rule"],
        stage=row["stage"],
        event_source=row["event_source"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        at=float(row["at"]),
        outcome=row["outcome"],
        detail=row["detail"],
        actions=tuple(PlannedAction(**a) for a in json.loads(row["actions"])),
        enqueued=bool(row["enqueued"]),
        subject=row["subject"],
        grant=row["grant_id"],
    )


def _skipped(row: Row) -> SkippedEvent:
    return SkippedEvent(
        namespace=row["namespace"],
        event_source=row["event_source"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        at=float(row["at"]),
        attempts=int(row["attempts"]),
        reason=row["reason"],
    )


class SqlEnforcementRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def find(
        self, namespace: str, rule: str, stage: Stage, event_source: str, event_id: str
    ) -> Enforcement | None:
        row = await self._sql.fetch_one(
            f"SELECT {_ENFORCEMENT_COLUMNS} FROM rule_enforcements WHERE namespace = ?"
            " AND rule = ? AND stage = ? AND event_source = ? AND event_id = ?",
            (namespace, rule, stage, event_source, event_id),
        )
        return _enforcement(row) if row is not None else None

    async def find_many(
        self, stage: Stage, keys: Sequence[DecisionKey]
    ) -> dict[DecisionKey, Enforcement]:
        found: dict[DecisionKey, Enforcement] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), FIND_CHUNK):
            chunk = unique[start : start + FIND_CHUNK]
            # Padded (with its last key again) to a power of two: few distinct statement
            # texts, so each is prepared once (asyncpg's cache) and planned once.
            size = 1 << (len(chunk) - 1).bit_length()
            padded = chunk + [chunk[-1]] * (size - len(chunk))
            rows = await self._sql.fetch(
                _FIND_MANY.format(values=", ".join(["(?, ?, ?, ?)"] * size)),
                [stage, *(p for key in padded for p in key)],
            )
            for row in rows:
                rec = _enforcement(row)
                found[rec.key] = rec
        return found

    async def add(self, record: Enforcement) -> None:
        await self.add_many([record])

    async def add_many(self, records: Sequence[Enforcement]) -> None:
        for start in range(0, len(records), ADD_CHUNK):
            chunk = records[start : start + ADD_CHUNK]
            values = ", ".join([_ENFORCEMENT_VALUES] * len(chunk))
            params = [p for rec in chunk for p in _enforcement_params(rec)]
            await self._sql.execute(
                f"INSERT INTO rule_enforcements ({_ENFORCEMENT_COLUMNS}) VALUES {values}", params
            )

    async def for_event(self, event_id: str, event_source: str | None = None) -> list[Enforcement]:
        sql = f"SELECT {_ENFORCEMENT_COLUMNS} FROM rule_enforcements WHERE event_id = ?"
        params: list[Any] = [event_id]
        if event_source is not None:
            sql += " AND event_source = ?"
            params.append(event_source)
        rows = await self._sql.fetch(sql + " ORDER BY at, rule, stage", params)
        return [_enforcement(r) for r in rows]

    async def for_rule(self, namespace: str, rule: str, limit: int = 50) -> list[Enforcement]:
        rows = await self._sql.fetch(
            f"SELECT {_ENFORCEMENT_COLUMNS} FROM rule_enforcements WHERE namespace = ?"
            " AND rule = ? ORDER BY at DESC LIMIT ?",
            (namespace, rule, int(limit)),
        )
        return [_enforcement(r) for r in rows]

    async def about(
        self, namespace: str, subject: str, *, since: float = 0.0, limit: int = 100
    ) -> list[Enforcement]:
        rows = await self._sql.fetch(
            f"SELECT {_ENFORCEMENT_COLUMNS} FROM rule_enforcements WHERE namespace = ?"
            " AND subject = ? AND subject <> '' AND at >= ? ORDER BY at DESC LIMIT ?",
            (namespace, subject, float(since), int(limit)),
        )
        return [_enforcement(r) for r in rows]

    async def add_skipped(self, skipped: SkippedEvent) -> None:
        await self._sql.execute(
            f"INSERT INTO rule_skipped_events ({_SKIPPED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, event_source, event_id) DO UPDATE SET"
            " event_type = excluded.event_type, at = excluded.at,"
            " attempts = excluded.attempts, reason = excluded.reason",
            (
                skipped.namespace,
                skipped.event_source,
                skipped.event_id,
                skipped.event_type,
                float(skipped.at),
                int(skipped.attempts),
                skipped.reason,
            ),
        )

    async def skipped(self, event_id: str, namespace: str) -> list[SkippedEvent]:
        rows = await self._sql.fetch(
            f"SELECT {_SKIPPED_COLUMNS} FROM rule_skipped_events"
            " WHERE event_id = ? AND namespace = ? ORDER BY at",
            (event_id, namespace),
        )
        return [_skipped(r) for r in rows]

    async def prune(self, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM rule_enforcements WHERE id IN (SELECT id FROM rule_enforcements"
            " WHERE at < ? ORDER BY at LIMIT ?)",
            (float(before), limit),
        )

    async def prune_skipped(self, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM rule_skipped_events WHERE (namespace, event_source, event_id) IN"
            " (SELECT namespace, event_source, event_id FROM rule_skipped_events"
            " WHERE at < ? ORDER BY at LIMIT ?)",
            (float(before), limit),
        )
