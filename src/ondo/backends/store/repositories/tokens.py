"""Bearer tokens and the principals they name: the repository's contract and its record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who makes a call. The admin may do everything in every namespace."""

    name: str
    namespace: str = "default"

    @property
    def is_admin(self) -> bool:
        return self.name == ADMIN


class TokenRepository(Protocol):
    """Tokens by their sha256 digest (the token itself is never stored)."""

    async def add(self, digest: str, principal: Principal, now: float) -> None: ...

    async def principal(self, digest: str) -> Principal | None:
        """The principal the token with this digest names, or None."""
        ...
