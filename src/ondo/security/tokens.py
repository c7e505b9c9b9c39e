"""Bearer tokens: only their sha256 is stored; the admin token is written once to a 0600 file."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite.migrations import MIGRATIONS

ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who makes a call. The admin may do everything in every namespace."""

    name: str
    namespace: str = "default"

    @property
    def is_admin(self) -> bool:
        return self.name == ADMIN


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        db.migrate(MIGRATIONS)  # every domain's: idempotent
        self._cache: dict[str, Principal] = {}

    def issue(self, principal: Principal, now: float) -> str:
        """A new random token (256 bits) for `principal`; only its sha256 is kept."""
        token = "ondo_" + secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?)",
            (_digest(token), principal.name, principal.namespace, now),
        )
        return token

    def authenticate(self, token: str) -> Principal | None:
        digest = _digest(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        row = self.db.query_one("SELECT principal, namespace FROM tokens WHERE hash = ?", (digest,))
        if row is None:
            return None
        principal = Principal(row[0], row[1])
        self._cache[digest] = principal
        return principal

    def ensure_admin_token(self, path: Path, now: float) -> tuple[str, bool]:
        """Return the admin token, creating it (and its 0600 file) on first start."""
        if path.exists():
            token = path.read_text().strip()
            if self.authenticate(token) is not None:
                return token, False
        token = self.issue(Principal(ADMIN), now)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.chmod(path, 0o600)
        return token, True
