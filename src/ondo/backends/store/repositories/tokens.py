"""Principals (users, service accounts, functions) and their bearer tokens: the repository's
contract and its records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ADMIN = "admin"
Role = Literal["admin", "developer", "operator", "citizen"]
ROLES: tuple[Role, ...] = ("admin", "developer", "operator", "citizen")
PrincipalKind = Literal["user", "service", "function"]
# A token issued before users existed names a principal with no user row: it keeps what it could
# do then (everything in its namespace but the platform-wide endpoints).
LEGACY_ROLE: Role = "developer"


@dataclass(frozen=True)
class Principal:
    """Who makes a call: a name in a namespace, with a role.

    The platform admin (the principal `admin`, whose token is `<data-dir>/admin.token`) may do
    everything in every namespace. A user whose role is `admin` administers its own namespace
    only. `scope`, when not empty, narrows what this token may do below its role (a function's
    short-lived token): entries are `PERMISSION` or `PERMISSION:RESOURCE-PATTERN`.
    `policies` widen the role: (permission, resource pattern) pairs of the principal's policies
    (repositories/policies.py), loaded with it when its token is authenticated."""

    name: str
    namespace: str = "default"
    role: Role = LEGACY_ROLE
    kind: PrincipalKind = "user"
    token_id: str = field(default="", compare=False)
    expires_at: float | None = field(default=None, compare=False)
    scope: tuple[str, ...] = ()
    policies: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def is_admin(self) -> bool:
        """The platform admin (not a namespace's admin)."""
        return self.name == ADMIN


@dataclass(frozen=True)
class User:
    """A user or service account of a namespace."""

    namespace: str
    name: str
    role: Role
    kind: PrincipalKind
    created_at: float
    created_by: str


@dataclass(frozen=True)
class TokenInfo:
    """What `tokens list` shows of a token: never the token or its hash."""

    id: str
    principal: str
    namespace: str
    label: str
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None
    scope: tuple[str, ...]


@dataclass(frozen=True)
class NewToken:
    """A token's row, as issued (only the sha256 of the token is stored)."""

    digest: str
    id: str
    principal: Principal
    created_at: float
    label: str = ""
    created_by: str = ""
    expires_at: float | None = None


class TokenRepository(Protocol):
    """Tokens by their sha256 digest (the token itself is never stored), and the users they
    belong to."""

    async def add(self, token: NewToken) -> None: ...

    async def principal(self, digest: str) -> tuple[Principal, float | None] | None:
        """The principal the token with this digest names and when it was revoked (None: it
        was not), or None for an unknown digest. The role comes from the user's row."""
        ...

    async def listing(self, namespace: str | None, principal: str | None) -> list[TokenInfo]:
        """Tokens of a namespace (None: every namespace), of one principal if given."""
        ...

    async def token(self, namespace: str | None, token_id: str) -> TokenInfo | None:
        """The token with this id (in `namespace` unless None), or None."""
        ...

    async def revoke(self, namespace: str | None, token_id: str, now: float) -> TokenInfo | None:
        """Revoke the token with this id (in `namespace` unless None); None if there is none."""
        ...

    async def revoke_principal(self, namespace: str, principal: str, now: float) -> int:
        """Revoke every token of a principal; how many were live."""
        ...

    async def put_user(self, user: User) -> None:
        """Add a user, or change its role and kind."""
        ...

    async def user(self, namespace: str, name: str) -> User | None: ...

    async def users(self, namespace: str | None) -> list[User]: ...

    async def delete_user(self, namespace: str, name: str) -> bool: ...


# The change feed's topic for tokens and users: a revoked token or a changed role reaches every
# process's cache of authenticated tokens.
PRINCIPALS_TOPIC = "principals"
