"""The platform's keys in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import base64

from ondo.backends.store.base import Sql


class SqlPlatformKeyRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def ensure(self, name: str, candidate: bytes, now: float) -> bytes:
        # Insert-or-keep, then read: two nodes starting at once both end up with the first key.
        await self._sql.execute(
            "INSERT INTO platform_keys (name, secret, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, base64.b64encode(candidate).decode("ascii"), now),
        )
        stored = await self._sql.fetch_value(
            "SELECT secret FROM platform_keys WHERE name = ?", (name,)
        )
        return base64.b64decode(stored)
