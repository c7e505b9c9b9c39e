"""Tokens and users in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

import json
from typing import cast

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.tokens import (
    ADMIN,
    LEGACY_ROLE,
    PRINCIPALS_TOPIC,
    NewToken,
    Principal,
    PrincipalKind,
    Role,
    TokenInfo,
    User,
)

_TOKEN_COLUMNS = (
    "t.id, t.principal, t.namespace, t.label, t.created_at, t.created_by, t.expires_at,"
    " t.revoked_at, t.scope"
)
_USER_COLUMNS = "namespace, name, role, kind, created_at, created_by"


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _info(row: Row) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        principal=row["principal"],
        namespace=row["namespace"],
        label=row["label"],
        created_at=float(row["created_at"]),
        created_by=row["created_by"],
        expires_at=_optional_float(row["expires_at"]),
        revoked_at=_optional_float(row["revoked_at"]),
        scope=tuple(json.loads(row["scope"])),
    )


def _role(name: str, stored: str | None) -> Role:
    if name == ADMIN:
        return "admin"
    return cast(Role, stored) if stored else LEGACY_ROLE


def _user(row: Row) -> User:
    return User(
        row["namespace"],
        row["name"],
        cast(Role, row["role"]),
        cast(PrincipalKind, row["kind"]),
        float(row["created_at"]),
        row["created_by"],
    )


class SqlTokenRepository:
    """`TokenRepository` (repositories/tokens.py) over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, token: NewToken) -> None:
        principal = token.principal
        # A user's token takes its role from the user's row (so a role change reaches it); a
        # token for a principal with no row (a function, the admin) carries its own.
        await self._sql.execute(
            "INSERT INTO tokens (hash, id, principal, namespace, created_at, label, created_by,"
            " expires_at, scope, role, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token.digest,
                token.id,
                principal.name,
                principal.namespace,
                float(token.created_at),
                token.label,
                token.created_by,
                token.expires_at,
                json.dumps(list(principal.scope)),
                principal.role,
                principal.kind,
            ),
        )

    async def principal(self, digest: str) -> tuple[Principal, float | None] | None:
        row = await self._sql.fetch_one(
            "SELECT t.id, t.principal, t.namespace, t.expires_at, t.revoked_at, t.scope,"
            " t.role AS token_role, t.kind AS token_kind, u.role AS user_role,"
            " u.kind AS user_kind FROM tokens t LEFT JOIN users u"
            " ON u.namespace = t.namespace AND u.name = t.principal WHERE t.hash = ?",
            (digest,),
        )
        if row is None:
            return None
        principal = Principal(
            row["principal"],
            row["namespace"],
            role=_role(row["principal"], row["user_role"] or row["token_role"]),
            kind=row["user_kind"] or row["token_kind"] or "user",
            token_id=row["id"] or "",
            expires_at=_optional_float(row["expires_at"]),
            scope=tuple(json.loads(row["scope"] or "[]")),
        )
        return principal, _optional_float(row["revoked_at"])

    async def listing(self, namespace: str | None, principal: str | None) -> list[TokenInfo]:
        where, params = _scope_filter(namespace, principal)
        rows = await self._sql.fetch(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens t{where} ORDER BY t.created_at, t.id", params
        )
        return [_info(row) for row in rows]

    async def token(self, namespace: str | None, token_id: str) -> TokenInfo | None:
        where, params = _scope_filter(namespace, None)
        where = f"{where} AND t.id = ?" if where else " WHERE t.id = ?"
        row = await self._sql.fetch_one(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens t{where}", (*params, token_id)
        )
        return None if row is None else _info(row)

    async def revoke(self, namespace: str | None, token_id: str, now: float) -> TokenInfo | None:
        if await self.token(namespace, token_id) is None:
            return None
        await self._sql.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (float(now), token_id),
        )
        await self._sql.notify(PRINCIPALS_TOPIC, token_id)
        revoked = await self._sql.fetch_one(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens t WHERE t.id = ?", (token_id,)
        )
        return None if revoked is None else _info(revoked)

    async def revoke_principal(self, namespace: str, principal: str, now: float) -> int:
        count = await self._sql.execute(
            "UPDATE tokens SET revoked_at = ? WHERE namespace = ? AND principal = ?"
            " AND revoked_at IS NULL",
            (float(now), namespace, principal),
        )
        await self._sql.notify(PRINCIPALS_TOPIC, f"{namespace}/{principal}")
        return count

    async def put_user(self, user: User) -> None:
        await self._sql.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (namespace, name) DO UPDATE SET role = excluded.role,"
            " kind = excluded.kind",
            (
                user.namespace,
                user.name,
                user.role,
                user.kind,
                float(user.created_at),
                user.created_by,
            ),
        )
        await self._sql.notify(PRINCIPALS_TOPIC, f"{user.namespace}/{user.name}")

    async def user(self, namespace: str, name: str) -> User | None:
        row = await self._sql.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE namespace = ? AND name = ?",
            (namespace, name),
        )
        return None if row is None else _user(row)

    async def users(self, namespace: str | None) -> list[User]:
        if namespace is None:
            rows = await self._sql.fetch(
                f"SELECT {_USER_COLUMNS} FROM users ORDER BY namespace, name"
            )
        else:
            rows = await self._sql.fetch(
                f"SELECT {_USER_COLUMNS} FROM users WHERE namespace = ? ORDER BY name",
                (namespace,),
            )
        return [_user(row) for row in rows]

    async def delete_user(self, namespace: str, name: str) -> bool:
        gone = await self._sql.execute(
            "DELETE FROM users WHERE namespace = ? AND name = ?", (namespace, name)
        )
        await self._sql.notify(PRINCIPALS_TOPIC, f"{namespace}/{name}")
        return gone > 0


def _scope_filter(namespace: str | None, principal: str | None) -> tuple[str, tuple[str, ...]]:
    clauses: list[str] = []
    params: list[str] = []
    if namespace is not None:
        clauses.append("t.namespace = ?")
        params.append(namespace)
    if principal is not None:
        clauses.append("t.principal = ?")
        params.append(principal)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
