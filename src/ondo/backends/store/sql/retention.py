"""The retention watermarks (repositories/retention.py) in SQL for SQLite and PostgreSQL."""

from __future__ import annotations

from ondo.backends.store.base import Sql


class SqlWatermarkRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def get(self, kind: str) -> float | None:
        found = await self._sql.fetch_value(
            "SELECT pruned_before FROM retention_watermarks WHERE kind = ?", (kind,)
        )
        return None if found is None else float(found)

    async def raise_to(self, kind: str, before: float, now: float) -> None:
        await self._sql.execute(
            "INSERT INTO retention_watermarks (kind, pruned_before, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (kind) DO UPDATE SET updated_at = excluded.updated_at,"
            " pruned_before = CASE WHEN excluded.pruned_before > retention_watermarks.pruned_before"
            " THEN excluded.pruned_before ELSE retention_watermarks.pruned_before END",
            (kind, float(before), float(now)),
        )
