"""The audit log in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import json

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.audit import AuditEntry, AuditRecord

_COLUMNS = (
    "seq, at, namespace, principal, action, resource, outcome, about, detail, prev_hash, hash"
)


def _entry(row: Row) -> AuditEntry:
    record = AuditRecord(
        float(row["at"]),
        row["namespace"],
        row["principal"],
        row["action"],
        row["resource"],
        row["outcome"],
        row["about"],
        json.loads(row["detail"]),
    )
    return AuditEntry(int(row["seq"]), record, row["prev_hash"], row["hash"])


class SqlAuditRepository:
    """`AuditRepository` (repositories/audit.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def lock(self) -> None:
        if self._sql.dialect == "postgres":
            # Conflicts with itself, not with readers: appends queue here, lists and verify go on.
            await self._sql.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        # SQLite: the transaction (BEGIN IMMEDIATE) already holds the only write lock.

    async def last(self) -> AuditEntry | None:
        row = await self._sql.fetch_one(
            f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1"
        )
        return None if row is None else _entry(row)

    async def append(self, entry: AuditEntry) -> None:
        r = entry.record
        # The sequence number is part of the hash, so it is chosen by the log, not the database.
        await self._sql.execute(
            f"INSERT INTO audit_log ({_COLUMNS}) "
            + ("OVERRIDING SYSTEM VALUE " if self._sql.dialect == "postgres" else "")
            + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.seq,
                float(r.at),
                r.namespace,
                r.principal,
                r.action,
                r.resource,
                r.outcome,
                r.about,
                json.dumps(r.detail, sort_keys=True),
                entry.prev_hash,
                entry.hash,
            ),
        )

    async def listing(
        self,
        namespace: str | None,
        *,
        about: str | None = None,
        principal: str | None = None,
        involving: str | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        clauses = ["seq > ?"]
        params: list[object] = [after_seq or 0]
        for column, value in (("namespace", namespace), ("about", about), ("principal", principal)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if involving is not None:
            clauses.append("(principal = ? OR about = ?)")
            params += [involving, involving]
        order = "ASC" if after_seq is not None else "DESC"  # no cursor: the newest
        rows = await self._sql.fetch(
            f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(clauses)}"
            f" ORDER BY seq {order} LIMIT ?",
            (*params, int(limit)),
        )
        return sorted((_entry(row) for row in rows), key=lambda entry: entry.seq)

    async def at(self, seq: int) -> AuditEntry | None:
        row = await self._sql.fetch_one(
            f"SELECT {_COLUMNS} FROM audit_log WHERE seq = ?", (int(seq),)
        )
        return None if row is None else _entry(row)

    async def chain(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = await self._sql.fetch(
            f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [_entry(row) for row in rows]
