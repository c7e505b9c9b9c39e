"""Secrets in SQL that SQLite and PostgreSQL share (ciphertexts only: see security/secrets.py)."""

from __future__ import annotations

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.secrets import (
    SECRETS_TOPIC,
    SecretInfo,
    StoredSecret,
    secret_key,
)

_INFO_COLUMNS = "namespace, name, created_at, updated_at, created_by"


def _info(row: Row) -> SecretInfo:
    return SecretInfo(
        row["namespace"],
        row["name"],
        float(row["created_at"]),
        float(row["updated_at"]),
        row["created_by"],
    )


class SqlSecretRepository:
    """`SecretRepository` (repositories/secrets.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def put(self, secret: StoredSecret) -> bool:
        info = secret.info
        existed = await self._sql.fetch_value(
            "SELECT 1 FROM secrets WHERE namespace = ? AND name = ?", (info.namespace, info.name)
        )
        await self._sql.execute(
            f"INSERT INTO secrets ({_INFO_COLUMNS}, ciphertext) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, name) DO UPDATE SET ciphertext = excluded.ciphertext,"
            " updated_at = excluded.updated_at",
            (
                info.namespace,
                info.name,
                float(info.created_at),
                float(info.updated_at),
                info.created_by,
                secret.ciphertext,
            ),
        )
        await self._sql.notify(SECRETS_TOPIC, secret_key(info.namespace, info.name))
        return existed is None

    async def get(self, namespace: str, name: str) -> StoredSecret | None:
        row = await self._sql.fetch_one(
            f"SELECT {_INFO_COLUMNS}, ciphertext FROM secrets WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return None if row is None else StoredSecret(_info(row), bytes(row["ciphertext"]))

    async def listing(self, namespace: str) -> list[SecretInfo]:
        rows = await self._sql.fetch(
            f"SELECT {_INFO_COLUMNS} FROM secrets WHERE namespace = ? ORDER BY name",
            (namespace,),
        )
        return [_info(row) for row in rows]

    async def delete(self, namespace: str, name: str) -> bool:
        gone = await self._sql.execute(
            "DELETE FROM secrets WHERE namespace = ? AND name = ?", (namespace, name)
        )
        if gone:
            await self._sql.notify(SECRETS_TOPIC, secret_key(namespace, name))
        return gone > 0
