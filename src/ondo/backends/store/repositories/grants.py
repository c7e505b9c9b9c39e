"""Consent grants: a data subject allows a grantee to have rules about it fire on some event
types (security/consent.py decides with them); the repository's contract and its record."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Protocol

# The change feed's topic for grants; the key is the grant's namespace ("*": every namespace).
GRANTS_TOPIC = "grants"


@dataclass(frozen=True)
class Grant:
    """`subject` lets `grantee` have rules about it act on events whose type matches one of
    `types` (globs), until `expires_at` (None: no end) or until it is revoked. `fields`, when
    not None, are the only `data` fields the grantee's actions receive."""

    id: str
    namespace: str
    subject: str
    grantee: str
    types: tuple[str, ...]
    fields: tuple[str, ...] | None
    purpose: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def live(self, now: float) -> bool:
        """Not revoked, and not expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def covers_type(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, glob) for glob in self.types)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "subject": self.subject,
            "to": self.grantee,
            "types": list(self.types),
            "fields": None if self.fields is None else list(self.fields),
            "purpose": self.purpose,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


class GrantRepository(Protocol):
    """The `grants` table. Every change notifies GRANTS_TOPIC with the grant's namespace."""

    async def add(self, grant: Grant) -> None: ...

    async def get(self, namespace: str, grant_id: str) -> Grant | None: ...

    async def in_namespace(self, namespace: str, *, revoked: bool = False) -> list[Grant]:
        """The namespace's grants, oldest first; revoked ones too when `revoked`."""
        ...

    async def of(self, namespace: str, principal: str) -> list[Grant]:
        """Grants `principal` gave (as subject) or holds (as grantee), revoked ones too,
        oldest first."""
        ...

    async def revoke(self, namespace: str, grant_id: str, now: float) -> Grant | None:
        """Mark the grant revoked at `now` (kept if revoked before); None if there is none."""
        ...
