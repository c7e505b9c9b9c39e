"""Content-addressed blobs (code bundles, dependency layers) shared through the store.

A blob is the bytes of a packed directory, named by its kind and the sha256 its directory is
stored under locally (functions/bundle.py for code, runtime/layers.py for layers). It is
written whole in one transaction (so a reader sees all of it or nothing) and never changes.
Only a store shared by several processes holds blobs (see Store.shared).
"""

from __future__ import annotations

from typing import Literal, Protocol

BlobKind = Literal["code", "layer"]
PART_BYTES = 4 * 1024 * 1024  # one row per part: drivers and WAL records stay small


class BlobRepository(Protocol):
    """Blobs by (kind, hash), stored in parts of PART_BYTES."""

    async def put(self, kind: BlobKind, digest: str, data: bytes) -> None:
        """Store `data` unless a blob of that kind and hash is there already (idempotent).
        Call it in a transaction: its parts are several rows."""
        ...

    async def get(self, kind: BlobKind, digest: str) -> bytes | None:
        """The blob's bytes (its parts joined in order), or None if it is not stored."""
        ...

    async def exists(self, kind: BlobKind, digest: str) -> bool: ...
