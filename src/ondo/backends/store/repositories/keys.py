"""Keys the platform itself holds (e.g. the one that signs functions' tokens): the repository's
contract. Kept in the store so every node sharing it signs and verifies alike."""

from __future__ import annotations

from typing import Protocol


class PlatformKeyRepository(Protocol):
    """Named secret keys of the platform, each created once and never changed."""

    async def ensure(self, name: str, candidate: bytes, now: float) -> bytes:
        """The key named `name`; the first caller (of any process) stores `candidate`, and
        everyone, that caller included, gets the one that was stored first."""
        ...
