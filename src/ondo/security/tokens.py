"""Bearer tokens: only their sha256 is stored; the admin token is written once to a 0600 file."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from ondo.backends.store.repositories.tokens import ADMIN, Principal, TokenRepository

__all__ = ["ADMIN", "Principal", "TokenStore"]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Issues and checks tokens through `tokens` (the store's autocommit repository).

    Principals found are remembered: a token is never changed once issued, so an entry cannot
    go stale (tokens are not revoked yet; revoking will need the change feed)."""

    def __init__(self, tokens: TokenRepository) -> None:
        self.tokens = tokens
        self._cache: dict[str, Principal] = {}

    async def issue(self, principal: Principal, now: float) -> str:
        """A new random token (256 bits) for `principal`; only its sha256 is kept."""
        token = "ondo_" + secrets.token_urlsafe(32)
        await self.tokens.add(_digest(token), principal, now)
        return token

    async def authenticate(self, token: str) -> Principal | None:
        digest = _digest(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        principal = await self.tokens.principal(digest)
        if principal is not None:
            self._cache[digest] = principal
        return principal

    async def ensure_admin_token(self, path: Path, now: float) -> tuple[str, bool]:
        """Return the admin token, creating it (and its 0600 file) on first start."""
        if path.exists():
            token = path.read_text().strip()
            if await self.authenticate(token) is not None:
                return token, False
        token = await self.issue(Principal(ADMIN), now)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o600)
        return token, True
