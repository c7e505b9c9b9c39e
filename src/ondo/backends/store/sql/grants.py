"""Consent grants in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import json
from typing import cast

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.grants import GRANTS_TOPIC, Grant

_COLUMNS = (
    "id, namespace, subject, grantee, types, fields, purpose, created_at, expires_at, revoked_at"
)


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _grant(row: Row) -> Grant:
    fields = row["fields"]
    return Grant(
        id=row["id"],
        namespace=row["namespace"],
        subject=row["subject"],
        grantee=row["grantee"],
        types=tuple(json.loads(row["types"])),
        fields=None if fields is None else tuple(json.loads(fields)),
        purpose=row["purpose"],
        created_at=float(row["created_at"]),
        expires_at=_optional_float(row["expires_at"]),
        revoked_at=_optional_float(row["revoked_at"]),
    )


class SqlGrantRepository:
    """`GrantRepository` (repositories/grants.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, grant: Grant) -> None:
        fields = None if grant.fields is None else json.dumps(list(grant.fields))
        await self._sql.execute(
            f"INSERT INTO grants ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.id,
                grant.namespace,
                grant.subject,
                grant.grantee,
                json.dumps(list(grant.types)),
                fields,
                grant.purpose,
                float(grant.created_at),
                grant.expires_at,
                grant.revoked_at,
            ),
        )
        await self._sql.notify(GRANTS_TOPIC, grant.namespace)

    async def get(self, namespace: str, grant_id: str) -> Grant | None:
        row = await self._sql.fetch_one(
            f"SELECT {_COLUMNS} FROM grants WHERE namespace = ? AND id = ?", (namespace, grant_id)
        )
        return None if row is None else _grant(row)

    async def in_namespace(self, namespace: str, *, revoked: bool = False) -> list[Grant]:
        live = "" if revoked else " AND revoked_at IS NULL"
        rows = await self._sql.fetch(
            f"SELECT {_COLUMNS} FROM grants WHERE namespace = ?{live} ORDER BY created_at, id",
            (namespace,),
        )
        return [_grant(row) for row in rows]

    async def of(self, namespace: str, principal: str) -> list[Grant]:
        rows = await self._sql.fetch(
            f"SELECT {_COLUMNS} FROM grants WHERE namespace = ? AND (subject = ? OR grantee = ?)"
            " ORDER BY created_at, id",
            (namespace, principal, principal),
        )
        return [_grant(row) for row in rows]

    async def revoke(self, namespace: str, grant_id: str, now: float) -> Grant | None:
        await self._sql.execute(
            "UPDATE grants SET revoked_at = ? WHERE namespace = ? AND id = ?"
            " AND revoked_at IS NULL",
            (float(now), namespace, grant_id),
        )
        await self._sql.notify(GRANTS_TOPIC, namespace)
        return await self.get(namespace, grant_id)
