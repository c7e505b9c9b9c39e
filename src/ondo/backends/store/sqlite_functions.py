"""Functions, their immutable versions and invocation records, in the embedded SQLite store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ondo.backends.store.sqlite import SqliteDatabase, dump_json
from ondo.backends.store.sqlite.migrations import MIGRATIONS
from ondo.functions.model import FunctionConfig, FunctionVersion, InvocationRecord

RECORD_COLUMNS = (
    "id", "namespace", "function", "version", "status", "mode", "created_at", "finished_at",
    "cold", "init_ms", "duration_ms", "max_memory_mb", "error", "result", "logs", "trigger",
    "payload", "attempt",
)  # fmt: skip
# An upsert, not INSERT OR REPLACE: every write of a record keeps its `resumed` count.
RECORD_SQL = (
    f"INSERT INTO invocations ({', '.join(RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in RECORD_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in RECORD_COLUMNS[1:])
)
# The first record of an invocation, unless one with its id is there already.
NEW_RECORD_SQL = (
    f"INSERT INTO invocations ({', '.join(RECORD_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in RECORD_COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)

CURRENT_CACHE_SIZE = 4096  # functions whose current version is remembered


class FunctionRepository:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        db.migrate(MIGRATIONS)  # every domain's: idempotent
        # The current version of each function, as read last: every invocation asks. Versions
        # are immutable and only this repository changes which one is current (it forgets the
        # entry when it does), so an entry is never stale.
        self._current: dict[tuple[str, str], FunctionVersion | None] = {}

    # --- versions -----------------------------------------------------------------------

    def current(self, namespace: str, name: str) -> FunctionVersion | None:
        key = (namespace, name)
        if key in self._current:
            return self._current[key]
        row = self.db.query_one(
            "SELECT v.* FROM functions f JOIN function_versions v ON v.namespace = f.namespace"
            " AND v.name = f.name AND v.version = f.current_version"
            " WHERE f.namespace = ? AND f.name = ?",
            (namespace, name),
        )
        found = _version(row) if row else None
        if len(self._current) >= CURRENT_CACHE_SIZE:
            self._current.clear()
        self._current[key] = found
        return found

    def version(self, namespace: str, name: str, version: int) -> FunctionVersion | None:
        row = self.db.query_one(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? AND version = ?",
            (namespace, name, version),
        )
        return _version(row) if row else None

    def versions(self, namespace: str, name: str) -> list[FunctionVersion]:
        rows = self.db.query(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? ORDER BY version",
            (namespace, name),
        )
        return [_version(r) for r in rows]

    def list_current(self, namespace: str) -> list[FunctionVersion]:
        rows = self.db.query(
            "SELECT v.* FROM functions f JOIN function_versions v ON v.namespace = f.namespace"
            " AND v.name = f.name AND v.version = f.current_version"
            " WHERE f.namespace = ? ORDER BY f.name",
            (namespace,),
        )
        return [_version(r) for r in rows]

    def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        """The newest stored version with the draft's code, layer, settings and app, if any."""
        rows = self.db.query(
            "SELECT * FROM function_versions WHERE namespace = ? AND name = ? AND code_hash = ?"
            " AND layer_hash IS ? AND app IS ? ORDER BY version DESC",
            (draft.namespace, draft.name, draft.code_hash, draft.layer_hash, draft.app),
        )
        return next((v for v in map(_version, rows) if v.config == draft.config), None)

    def next_version(self, namespace: str, name: str) -> int:
        row = self.db.query_one(
            "SELECT COALESCE(MAX(version), 0) FROM function_versions"
            " WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return int(row[0] if row else 0) + 1

    def add_version(self, fv: FunctionVersion) -> FunctionVersion:
        """Store a new immutable version and make it current, in one transaction."""
        self._current.pop((fv.namespace, fv.name), None)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO function_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fv.namespace,
                    fv.name,
                    fv.version,
                    json.dumps(fv.config.to_json()),
                    fv.code_hash,
                    fv.layer_hash,
                    fv.app,
                    fv.created_at,
                ),
            )
            _set_current(conn, fv.namespace, fv.name, fv.version, fv.app, fv.created_at)
        return fv

    def set_current(self, namespace: str, name: str, version: int, now: float) -> None:
        self._current.pop((namespace, name), None)
        with self.db.transaction() as conn:
            app_row = conn.execute(
                "SELECT app FROM function_versions WHERE namespace=? AND name=? AND version=?",
                (namespace, name, version),
            ).fetchone()
            _set_current(conn, namespace, name, version, app_row[0] if app_row else None, now)

    def delete(self, namespace: str, name: str) -> None:
        """Forget the function and its versions; invocation records stay for the audit trail."""
        self._current.pop((namespace, name), None)
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM functions WHERE namespace = ? AND name = ?", (namespace, name)
            )
            conn.execute(
                "DELETE FROM function_versions WHERE namespace = ? AND name = ?", (namespace, name)
            )

    def names_of_app(self, namespace: str, app: str) -> list[str]:
        rows = self.db.query(
            "SELECT name FROM functions WHERE namespace = ? AND app = ? ORDER BY name",
            (namespace, app),
        )
        return [r[0] for r in rows]

    # --- invocations --------------------------------------------------------------------

    def record(self, rec: InvocationRecord, payload: bytes | None = None) -> None:
        """Insert or replace the record (payload kept while the invocation is pending)."""
        self.db.execute(RECORD_SQL, _record_row(rec, payload))

    def record_new_in(self, conn: sqlite3.Connection, rec: InvocationRecord) -> None:
        """Insert the first record of an invocation in the caller's transaction, unless its id
        is already recorded (a repeated destination finds its invocation already there)."""
        conn.execute(NEW_RECORD_SQL, _record_row(rec, None))

    def record_many(self, records: Sequence[InvocationRecord]) -> None:
        """Insert or replace final records (no payloads), all in one transaction."""
        if len(records) == 1:
            self.db.execute(RECORD_SQL, _record_row(records[0], None))
            return
        rows = [_record_row(rec, None) for rec in records]
        with self.db.transaction() as conn:
            conn.executemany(RECORD_SQL, rows)

    def invocation(self, invocation_id: str) -> InvocationRecord | None:
        row = self.db.query_one("SELECT * FROM invocations WHERE id = ?", (invocation_id,))
        return _record(row) if row else None

    def invocations(
        self, namespace: str, function: str, limit: int, before: float | None = None
    ) -> list[InvocationRecord]:
        rows = self.db.query(
            "SELECT * FROM invocations WHERE namespace = ? AND function = ?"
            " AND created_at < ? ORDER BY created_at DESC LIMIT ?",
            (namespace, function, before if before is not None else float("inf"), limit),
        )
        return [_record(r) for r in rows]

    def logs_after(
        self, namespace: str, function: str, after: float, limit: int = 200
    ) -> list[InvocationRecord]:
        """Finished invocations in the order they finished, for `ondo logs --follow`."""
        rows = self.db.query(
            "SELECT * FROM invocations WHERE namespace = ? AND function = ?"
            " AND finished_at > ? ORDER BY finished_at LIMIT ?",
            (namespace, function, after, limit),
        )
        return [_record(r) for r in rows]

    def pending(self) -> list[tuple[InvocationRecord, bytes, int]]:
        """Async invocations accepted but not finished (a restart resumes them): each with its
        payload and how many starts have resumed it already. Only those stored with their
        payload by earlier versions: an action job tracks the others (actions/async_invoke)."""
        rows = self.db.query(
            "SELECT * FROM invocations WHERE status IN ('queued', 'running') AND mode = 'async'"
            " AND payload IS NOT NULL ORDER BY created_at"
        )
        return [(_record(r), bytes(r["payload"] or b""), int(r["resumed"])) for r in rows]

    def count_resumption(self, invocation_id: str) -> None:
        self.db.execute(
            "UPDATE invocations SET resumed = resumed + 1 WHERE id = ?", (invocation_id,)
        )

    def interrupt_running_sync(self, now: float) -> int:
        """Sync invocations cut off by a crash cannot be resumed: their caller is gone."""
        cur = self.db.execute(
            "UPDATE invocations SET status = 'interrupted', finished_at = ?"
            " WHERE status = 'running' AND mode = 'sync'",
            (now,),
        )
        return cur.rowcount


def _set_current(
    conn: sqlite3.Connection, namespace: str, name: str, version: int, app: str | None, now: float
) -> None:
    conn.execute(
        "INSERT INTO functions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE"
        " SET current_version = excluded.current_version, app = excluded.app,"
        " updated_at = excluded.updated_at",
        (namespace, name, version, app, now, now),
    )


def _record_row(rec: InvocationRecord, payload: bytes | None) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.namespace,
        rec.function,
        rec.version,
        rec.status,
        rec.mode,
        rec.created_at,
        rec.finished_at,
        int(rec.cold),
        rec.init_ms,
        rec.duration_ms,
        rec.max_memory_mb,
        dump_json(rec.error),
        rec.result_json.decode() if rec.result_json is not None else dump_json(rec.result),
        rec.logs,
        rec.trigger,
        payload,
        rec.attempt,
    )


def _version(row: sqlite3.Row) -> FunctionVersion:
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


def _record(row: sqlite3.Row) -> InvocationRecord:
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
