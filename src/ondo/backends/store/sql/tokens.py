"""Bearer tokens in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from ondo.backends.store.base import Sql
from ondo.backends.store.repositories.tokens import Principal


class SqlTokenRepository:
    """`TokenRepository` (repositories/tokens.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, digest: str, principal: Principal, now: float) -> None:
        await self._sql.execute(
            "INSERT INTO tokens (hash, principal, namespace, created_at) VALUES (?, ?, ?, ?)",
            (digest, principal.name, principal.namespace, float(now)),
        )

    async def principal(self, digest: str) -> Principal | None:
        row = await self._sql.fetch_one(
            "SELECT principal, namespace FROM tokens WHERE hash = ?", (digest,)
        )
        return None if row is None else Principal(row["principal"], row["namespace"])
