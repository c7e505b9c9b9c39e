"""Blobs in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from ondo.backends.store.base import Sql
from ondo.backends.store.repositories.blobs import PART_BYTES, BlobKind


class SqlBlobRepository:
    """`BlobRepository` (repositories/blobs.py) over one `Sql`."""

    def __init__(self, sql: Sql, part_bytes: int = PART_BYTES) -> None:
        self._sql = sql
        self._part_bytes = part_bytes

    async def put(self, kind: BlobKind, digest: str, data: bytes) -> None:
        step = self._part_bytes
        parts = [data[at : at + step] for at in range(0, len(data), step)] or [b""]
        await self._sql.execute_many(
            "INSERT INTO blob_parts (kind, hash, part, data) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, hash, part) DO NOTHING",
            [(kind, digest, index, bytes(part)) for index, part in enumerate(parts)],
        )

    async def get(self, kind: BlobKind, digest: str) -> bytes | None:
        rows = await self._sql.fetch(
            "SELECT data FROM blob_parts WHERE kind = ? AND hash = ? ORDER BY part",
            (kind, digest),
        )
        if not rows:
            return None
        return b"".join(bytes(row["data"]) for row in rows)

    async def exists(self, kind: BlobKind, digest: str) -> bool:
        found = await self._sql.fetch_value(
            "SELECT 1 FROM blob_parts WHERE kind = ? AND hash = ? AND part = 0", (kind, digest)
        )
        return found is not None
