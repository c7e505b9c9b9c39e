"""Sources, their state, contacts and groups in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import json
from typing import Any

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.sources import (
    DIRECTORY_TOPIC,
    SOURCES_TOPIC,
    StoredContact,
    StoredGroup,
    StoredSource,
)

_SOURCE_COLUMNS = "namespace, name, kind, spec, app, updated_at"


def _source(row: Row) -> StoredSource:
    return StoredSource(
        row["namespace"],
        row["name"],
        row["kind"],
        json.loads(row["spec"]),
        row["app"],
        float(row["updated_at"]),
    )


class SqlSourceRepository:
    """`SourceRepository` (repositories/sources.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def put(self, source: StoredSource) -> None:
        await self._sql.execute(
            f"INSERT INTO sources ({_SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (namespace, name) DO UPDATE SET kind = excluded.kind, "
            "spec = excluded.spec, app = excluded.app, updated_at = excluded.updated_at",
            (
                source.namespace,
                source.name,
                source.kind,
                json.dumps(source.spec, sort_keys=True),
                source.app,
                source.updated_at,
            ),
        )
        await self._sql.notify(SOURCES_TOPIC, source.key)

    async def delete(self, namespace: str, name: str) -> bool:
        await self._sql.execute(
            "DELETE FROM source_state WHERE namespace = ? AND name = ?", (namespace, name)
        )
        gone = await self._sql.execute(
            "DELETE FROM sources WHERE namespace = ? AND name = ?", (namespace, name)
        )
        await self._sql.notify(SOURCES_TOPIC, f"{namespace}/{name}")
        return gone > 0

    async def get(self, namespace: str, name: str) -> StoredSource | None:
        row = await self._sql.fetch_one(
            f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return None if row is None else _source(row)

    async def all(self) -> list[StoredSource]:
        rows = await self._sql.fetch(
            f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY namespace, name"
        )
        return [_source(row) for row in rows]

    async def state(self, namespace: str, name: str) -> dict[str, str]:
        rows = await self._sql.fetch(
            "SELECT key, value FROM source_state WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return {row["key"]: row["value"] for row in rows}

    async def save_state(self, namespace: str, name: str, key: str, value: str, now: float) -> None:
        await self._sql.execute(
            "INSERT INTO source_state (namespace, name, key, value, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, name, key) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (namespace, name, key, value, float(now)),
        )


class SqlDirectoryRepository:
    """`DirectoryRepository` (repositories/sources.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def put_contact(self, contact: StoredContact) -> None:
        await self._put(
            "contacts", contact.namespace, contact.name, dict(contact.channels), contact.app
        )

    async def delete_contact(self, namespace: str, name: str) -> bool:
        return await self._delete("contacts", namespace, name)

    async def contacts(self, namespace: str) -> list[StoredContact]:
        return [
            StoredContact(namespace, name, body, app)
            for name, body, app in await self._in("contacts", namespace)
        ]

    async def put_group(self, group: StoredGroup) -> None:
        await self._put(
            "contact_groups", group.namespace, group.name, list(group.members), group.app
        )

    async def delete_group(self, namespace: str, name: str) -> bool:
        return await self._delete("contact_groups", namespace, name)

    async def groups(self, namespace: str) -> list[StoredGroup]:
        return [
            StoredGroup(namespace, name, tuple(body), app)
            for name, body, app in await self._in("contact_groups", namespace)
        ]

    async def namespaces(self) -> list[str]:
        rows = await self._sql.fetch(
            "SELECT namespace FROM contacts UNION SELECT namespace FROM contact_groups"
        )
        return sorted(row["namespace"] for row in rows)

    async def _put(
        self, table: str, namespace: str, name: str, body: object, app: str | None
    ) -> None:
        await self._sql.execute(
            f"INSERT INTO {table} (namespace, name, body, app) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (namespace, name) DO UPDATE SET body = excluded.body, app = excluded.app",
            (namespace, name, json.dumps(body, sort_keys=True), app),
        )
        await self._sql.notify(DIRECTORY_TOPIC, f"{namespace}/{name}")

    async def _delete(self, table: str, namespace: str, name: str) -> bool:
        gone = await self._sql.execute(
            f"DELETE FROM {table} WHERE namespace = ? AND name = ?", (namespace, name)
        )
        await self._sql.notify(DIRECTORY_TOPIC, f"{namespace}/{name}")
        return gone > 0

    async def _in(self, table: str, namespace: str) -> list[tuple[str, Any, str | None]]:
        rows = await self._sql.fetch(
            f"SELECT name, body, app FROM {table} WHERE namespace = ? ORDER BY name", (namespace,)
        )
        return [(row["name"], json.loads(row["body"]), row["app"]) for row in rows]
