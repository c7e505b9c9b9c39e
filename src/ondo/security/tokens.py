"""Bearer tokens: only their sha256 is stored; the admin token is written once to a 0600 file.

A token may expire and may be revoked. Principals found are cached by digest, with their
policies; any change to tokens, users or policies (in any process, through the store's change
feed) empties the cache, so a revocation, a role change or a new policy takes effect on the next
call.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ondo.backends.store.repositories.policies import PolicyRepository
from ondo.backends.store.repositories.tokens import (
    ADMIN,
    PRINCIPALS_TOPIC,
    NewToken,
    Principal,
    TokenRepository,
)
from ondo.security.function_tokens import FUNCTION_TOKEN_PREFIX, FunctionTokens

__all__ = ["ADMIN", "IssuedToken", "Principal", "TokenStore"]

TOKEN_PREFIX = "ondo_"
Subscribe = Callable[[str, Callable[[str], None]], Callable[[], None]]


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A token as issued: the secret (shown once, never stored) and its public id."""

    token: str
    id: str
    principal: Principal


class TokenStore:
    """Issues and checks tokens through `tokens` (the store's autocommit repository)."""

    def __init__(
        self,
        tokens: TokenRepository,
        clock: Callable[[], float] = time.time,
        functions: FunctionTokens | None = None,
        *,
        policies: PolicyRepository | None = None,
    ) -> None:
        self.tokens = tokens
        self.clock = clock
        # Functions' short-lived tokens: signed, not stored (security/function_tokens.py).
        self.functions = functions
        self.policies = policies
        # digest -> (principal, revoked_at); only tokens that exist are kept.
        self._cache: dict[str, tuple[Principal, float | None]] = {}
        # Counts the change feed's notices: a principal read while one arrived is not cached
        # (it may predate the change).
        self._generation = 0
        self._detach: Callable[[], None] | None = None

    def watch(self, subscribe: Subscribe) -> None:
        """Forget cached principals whenever a token, user or policy changes (in any process)."""
        self._detach = subscribe(PRINCIPALS_TOPIC, lambda _key: self.forget())

    def forget(self) -> None:
        """Empty the cache: the next call of every token reads the store again."""
        self._generation += 1
        self._cache.clear()

    def close(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    async def issue(
        self,
        principal: Principal,
        now: float,
        *,
        label: str = "",
        created_by: str = "",
        expires_at: float | None = None,
    ) -> IssuedToken:
        """A new random token (256 bits) for `principal`; only its sha256 is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(8)
        row = NewToken(digest_of(token), token_id, principal, now, label, created_by, expires_at)
        await self.tokens.add(row)
        issued = replace(principal, token_id=token_id, expires_at=expires_at)
        return IssuedToken(token, token_id, issued)

    async def authenticate(self, token: str) -> Principal | None:
        """The principal a live token names; None for an unknown, expired or revoked one."""
        if token.startswith(FUNCTION_TOKEN_PREFIX):
            return self.functions.verify(token) if self.functions is not None else None
        digest = digest_of(token)
        found = self._cache.get(digest)
        if found is None:
            found = await self._read(digest)
            if found is None:
                return None
        principal, revoked_at = found
        if revoked_at is not None:
            return None
        if principal.expires_at is not None and self.clock() >= principal.expires_at:
            return None
        return principal

    async def _read(self, digest: str) -> tuple[Principal, float | None] | None:
        generation = self._generation
        found = await self.tokens.principal(digest)
        if found is None:
            return None
        principal, revoked_at = found
        if self.policies is not None and not principal.is_admin:
            entries = await self.policies.listing(principal.namespace, principal.name)
            granted = tuple((p.permission, p.resource) for p in entries)
            found = replace(principal, policies=granted), revoked_at
        if generation == self._generation:
            self._cache[digest] = found
        return found

    async def ensure_admin_token(self, path: Path, now: float) -> tuple[str, bool]:
        """Return the admin token, creating it (and its 0600 file) on first start."""
        if path.exists():
            token = path.read_text().strip()
            if await self.authenticate(token) is not None:
                return token, False
        issued = await self.issue(
            Principal(ADMIN, role="admin"), now, label="admin token", created_by=ADMIN
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(issued.token + "\n")
        os.chmod(path, 0o600)
        return issued.token, True
