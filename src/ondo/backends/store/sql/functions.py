"""Functions, their versions and invocation records in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.functions import (
    FunctionConfig,
    FunctionVersion,
    InvocationRecord,
    PendingInvocation,
)

RECORD_COLUMNS = (
    "id", "namespace", "function", "version", "status", "mode", "created_at", "finished_at",
    "cold", "init_ms", "duration_ms", "max_memory_mb", "error", "result", "logs", "trigger",
    "payload", "attempt",
)  # fmt: skip
_INSERT_RECORD = (
    f"INSERT INTO invocations ({', '.join(RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)
# An upsert, not a replace: every write of a record keeps its `resumed` count.
RECORD_SQL = f"{_INSERT_RECORD} ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in RECORD_COLUMNS[1:]
)
# The first record of an invocation, unless one with its id is there already.
NEW_RECORD_SQL = f"{_INSERT_RECORD} ON CONFLICT (id) DO NOTHING"

_CURRENT = (
    "SELECT v.* FROM functions f JOIN function_versions v ON v.namespace = f.namespace"
    " AND v.name = f.name AND v.version = f.current_version"
)
_SET_CURRENT = (
    "INSERT INTO functions (namespace, name, current_version, app, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE"
    " SET current_version = excluded.current_version, app = excluded.app,"
    " updated_at = excluded.updated_at"
)


class SqlFunctionRepository:
    """`FunctionRepository` (repositories/functions.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def current(self, namespace: str, name: str) -> FunctionVersion | None:
        row = await self._sql.fetch_one(
            f"{_CURRENT} WHERE f.namespace = ? AND f.name = ?", (namespace, name)
        )
        return _version(row) if row else None

    async def version(self, namespace: str, name: str, version: int) -> FunctionVersion | None:
        row = await self._sql.fetch_one(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? AND version = ?",
            (namespace, name, version),
        )
        return _version(row) if row else None

    async def versions(self, namespace: str, name: str) -> list[FunctionVersion]:
        rows = await self._sql.fetch(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? ORDER BY version",
            (namespace, name),
        )
        return [_version(r) for r in rows]

    async def list_current(self, namespace: str) -> list[FunctionVersion]:
        rows = await self._sql.fetch(
            f"{_CURRENT} WHERE f.namespace = ? ORDER BY f.name", (namespace,)
        )
        return [_version(r) for r in rows]

    async def all_current(self) -> list[FunctionVersion]:
        return [_version(r) for r in await self._sql.fetch(_CURRENT)]

    async def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        rows = await self._sql.fetch(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? AND code_hash = ?"
            " AND layer_hash IS NOT DISTINCT FROM ? AND app IS NOT DISTINCT FROM ?"
            " ORDER BY version DESC",
            (draft.namespace, draft.name, draft.code_hash, draft.layer_hash, draft.app),
        )
        return next((v for v in map(_version, rows) if v.config == draft.config), None)

    async def next_version(self, namespace: str, name: str) -> int:
        found = await self._sql.fetch_value(
            "SELECT MAX(version) FROM function_versions WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return int(found or 0) + 1

    async def add_version(self, fv: FunctionVersion) -> None:
        await self._sql.execute(
            "INSERT INTO function_versions (namespace, name, version, config, code_hash,"
            " layer_hash, app, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fv.namespace,
                fv.name,
                fv.version,
                json.dumps(fv.config.to_json()),
                fv.code_hash,
                fv.layer_hash,
                fv.app,
                float(fv.created_at),
            ),
        )
        now = float(fv.created_at)
        await self._sql.execute(_SET_CURRENT, (fv.namespace, fv.name, fv.version, fv.app, now, now))

    async def set_current(self, namespace: str, name: str, version: int, now: float) -> None:
        app = await self._sql.fetch_value(
            "SELECT app FROM function_versions WHERE namespace = ? AND name = ? AND version = ?",
            (namespace, name, version),
        )
        await self._sql.execute(
            _SET_CURRENT, (namespace, name, version, app, float(now), float(now))
        )

    async def delete(self, namespace: str, name: str) -> None:
        await self._sql.execute(
            "DELETE FROM functions WHERE namespace = ? AND name = ?", (namespace, name)
        )
        await self._sql.execute(
            "DELETE FROM function_versions WHERE namespace = ? AND name = ?", (namespace, name)
        )

    async def names_of_app(self, namespace: str, app: str) -> list[str]:
        rows = await self._sql.fetch(
            "SELECT name FROM functions WHERE namespace = ? AND app = ? ORDER BY name",
            (namespace, app),
        )
        return [str(r[0]) for r in rows]


class SqlInvocationRepository:
    """`InvocationRepository` (repositories/functions.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def record(self, rec: InvocationRecord, payload: bytes | None = None) -> None:
        await self._sql.execute(RECORD_SQL, record_row(rec, payload))

    async def record_new(self, rec: InvocationRecord) -> None:
        await self._sql.execute(NEW_RECORD_SQL, record_row(rec, None))

    async def record_many(self, records: Sequence[InvocationRecord]) -> None:
        if len(records) == 1:
            await self._sql.execute(RECORD_SQL, record_row(records[0], None))
            return
        await self._sql.execute_many(RECORD_SQL, [record_row(rec, None) for rec in records])

    async def invocation(self, invocation_id: str) -> InvocationRecord | None:
        row = await self._sql.fetch_one("SELECT * FROM invocations WHERE id = ?", (invocation_id,))
        return _record(row) if row else None

    async def invocations(
        self, namespace: str, function: str, limit: int, before: float | None = None
    ) -> list[InvocationRecord]:
        where = "namespace = ? AND function = ?"
        params: list[Any] = [namespace, function]
        if before is not None:
            where += " AND created_at < ?"
            params.append(float(before))
        rows = await self._sql.fetch(
            f"SELECT * FROM invocations WHERE {where} ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        return [_record(r) for r in rows]

    async def logs_after(
        self, namespace: str, function: str, after: float, limit: int = 200
    ) -> list[InvocationRecord]:
        rows = await self._sql.fetch(
            "SELECT * FROM invocations WHERE namespace = ? AND function = ?"
            " AND finished_at > ? ORDER BY finished_at LIMIT ?",
            (namespace, function, float(after), limit),
        )
        return [_record(r) for r in rows]

    async def pending(self) -> list[PendingInvocation]:
        rows = await self._sql.fetch(
            "SELECT * FROM invocations WHERE status IN ('queued', 'running') AND mode = 'async'"
            " AND payload IS NOT NULL ORDER BY created_at"
        )
        return [
            PendingInvocation(_record(r), bytes(r["payload"] or b""), int(r["resumed"]))
            for r in rows
        ]

    async def claim_resumption(self, invocation_id: str, resumed: int) -> bool:
        changed = await self._sql.execute(
            "UPDATE invocations SET resumed = resumed + 1 WHERE id = ? AND resumed = ?",
            (invocation_id, resumed),
        )
        return changed == 1

    async def interrupt_running_sync(self, now: float) -> int:
        return await self._sql.execute(
            "UPDATE invocations SET status = 'interrupted', finished_at = ?"
            " WHERE status = 'running' AND mode = 'sync'",
            (float(now),),
        )

    async def prune_records(self, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations"
            " WHERE created_at < ? AND status NOT IN ('queued', 'running')"
            " ORDER BY created_at LIMIT ?)",
            (float(before), limit),
        )


def record_row(rec: InvocationRecord, payload: bytes | None) -> tuple[Any, ...]:
    """The parameters of RECORD_SQL / NEW_RECORD_SQL for one record."""
    return (
        rec.id,
        rec.namespace,
        rec.function,
        rec.version,
        rec.status,
        rec.mode,
        float(rec.created_at),
        None if rec.finished_at is None else float(rec.finished_at),
        int(rec.cold),
        float(rec.init_ms),
        float(rec.duration_ms),
        float(rec.max_memory_mb),
        None if rec.error is None else json.dumps(rec.error),
        rec.result_json.decode() if rec.result_json is not None else _json(rec.result),
        rec.logs,
        rec.trigger,
        payload,
        rec.attempt,
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _version(row: Row) -> FunctionVersion:
    return FunctionVersion(
        namespace=row["namespace"],
        name=row["name"],
        version=row["version"],
        config=FunctionConfig.from_json(json.loads(row["config"])),
        code_hash=row["code_hash"],
        layer_hash=row["layer_hash"],
        created_at=row["created_at"],
        app=row["app"],
    )


def _record(row: Row) -> InvocationRecord:
    return InvocationRecord(
        id=row["id"],
        namespace=row["namespace"],
        function=row["function"],
        version=row["version"],
        status=row["status"],
        mode=row["mode"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        cold=bool(row["cold"]),
        init_ms=row["init_ms"],
        duration_ms=row["duration_ms"],
        max_memory_mb=row["max_memory_mb"],
        error=json.loads(row["error"]) if row["error"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        logs=row["logs"] or "",
        trigger=row["trigger"],
        attempt=row["attempt"],
    )
