"""The event index (repositories/events.py) in SQL for SQLite and PostgreSQL.

One row per event, keyed by seq; looked up through (id, namespace) — ids are nearly unique, so
that one index serves both `seqs_of` and `seqs_by_id` — and pruned through the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence

from ondo.backends.store.base import Sql
from ondo.backends.store.repositories.events import IndexedEvent

INSERT_CHUNK = 100  # rows per INSERT (6 parameters each)
# A seq indexed already is rewritten only if it named another event (the log was reset under a
# kept store and numbers from 1 again): a re-delivered chunk writes nothing.
_INSERT = (
    "INSERT INTO event_index (seq, namespace, source, id, type, received_at) VALUES {values}"
    " ON CONFLICT (seq) DO UPDATE SET namespace = excluded.namespace, source = excluded.source,"
    " id = excluded.id, type = excluded.type, received_at = excluded.received_at"
    " WHERE event_index.id <> excluded.id OR event_index.source <> excluded.source"
    " OR event_index.namespace <> excluded.namespace"
)
_VALUES = "(?, ?, ?, ?, ?, ?)"


class SqlEventIndexRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, rows: Sequence[IndexedEvent]) -> None:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            params: list[object] = []
            for row in chunk:
                params += [
                    int(row.seq),
                    row.namespace,
                    row.source,
                    row.id,
                    row.type,
                    float(row.received_at),
                ]
            values = ", ".join([_VALUES] * len(chunk))
            await self._sql.execute(_INSERT.format(values=values), params)

    async def seqs_of(self, namespace: str, source: str, id: str, limit: int) -> list[int]:
        rows = await self._sql.fetch(
            "SELECT seq FROM event_index WHERE id = ? AND namespace = ? AND source = ?"
            " ORDER BY seq LIMIT ?",
            (id, namespace, source, int(limit)),
        )
        return [int(r["seq"]) for r in rows]

    async def seqs_by_id(self, id: str, namespace: str | None, limit: int) -> list[int]:
        if namespace is None:
            rows = await self._sql.fetch(
                "SELECT seq FROM event_index WHERE id = ? ORDER BY seq LIMIT ?", (id, int(limit))
            )
        else:
            rows = await self._sql.fetch(
                "SELECT seq FROM event_index WHERE id = ? AND namespace = ? ORDER BY seq LIMIT ?",
                (id, namespace, int(limit)),
            )
        return [int(r["seq"]) for r in rows]

    async def highest_seq(self) -> int:
        found = await self._sql.fetch_value("SELECT MAX(seq) FROM event_index")
        return 0 if found is None else int(found)

    async def prune(self, before: float, limit: int) -> int:
        # The `limit` lowest seqs, of which those received before `before`: a bounded read of
        # the primary key, whatever the table holds. The bus's clock grows with the seq (as the
        # logs' own pruning assumes), so fewer than `limit` means nothing older is left.
        return await self._sql.execute(
            "DELETE FROM event_index WHERE seq IN (SELECT seq FROM (SELECT seq, received_at"
            " FROM event_index ORDER BY seq LIMIT ?) AS oldest WHERE received_at < ?)",
            (int(limit), float(before)),
        )
