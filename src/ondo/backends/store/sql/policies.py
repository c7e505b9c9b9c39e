"""Policies in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.policies import Policy
from ondo.backends.store.repositories.tokens import PRINCIPALS_TOPIC

_COLUMNS = "id, namespace, principal, permission, resource, created_at, created_by"


def _policy(row: Row) -> Policy:
    return Policy(
        id=row["id"],
        namespace=row["namespace"],
        principal=row["principal"],
        permission=row["permission"],
        resource=row["resource"],
        created_at=float(row["created_at"]),
        created_by=row["created_by"],
    )


class SqlPolicyRepository:
    """`PolicyRepository` (repositories/policies.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, policy: Policy) -> None:
        await self._sql.execute(
            f"INSERT INTO policies ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                policy.id,
                policy.namespace,
                policy.principal,
                policy.permission,
                policy.resource,
                float(policy.created_at),
                policy.created_by,
            ),
        )
        await self._sql.notify(PRINCIPALS_TOPIC, f"{policy.namespace}/{policy.principal}")

    async def listing(self, namespace: str, principal: str | None) -> list[Policy]:
        if principal is None:
            rows = await self._sql.fetch(
                f"SELECT {_COLUMNS} FROM policies WHERE namespace = ? ORDER BY created_at, id",
                (namespace,),
            )
        else:
            rows = await self._sql.fetch(
                f"SELECT {_COLUMNS} FROM policies WHERE namespace = ? AND principal = ?"
                " ORDER BY created_at, id",
                (namespace, principal),
            )
        return [_policy(row) for row in rows]

    async def delete(self, namespace: str, policy_id: str) -> Policy | None:
        row = await self._sql.fetch_one(
            f"SELECT {_COLUMNS} FROM policies WHERE namespace = ? AND id = ?",
            (namespace, policy_id),
        )
        if row is None:
            return None
        await self._sql.execute(
            "DELETE FROM policies WHERE namespace = ? AND id = ?", (namespace, policy_id)
        )
        policy = _policy(row)
        await self._sql.notify(PRINCIPALS_TOPIC, f"{namespace}/{policy.principal}")
        return policy

    async def delete_principal(self, namespace: str, principal: str) -> int:
        gone = await self._sql.execute(
            "DELETE FROM policies WHERE namespace = ? AND principal = ?", (namespace, principal)
        )
        await self._sql.notify(PRINCIPALS_TOPIC, f"{namespace}/{principal}")
        return gone
