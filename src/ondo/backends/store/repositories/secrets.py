"""Secrets: the repository's contract and its records. The store holds ciphertexts only; the
domain (security/secrets.py) encrypts and decrypts, and never hands a value to a listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# The change feed's topic for secrets: key "namespace/name" when a secret is set or deleted, so
# every process drops the value it cached and restarts the functions that declare it.
SECRETS_TOPIC = "secrets"


def secret_key(namespace: str, name: str) -> str:
    """The change feed's key for one secret (topic SECRETS_TOPIC)."""
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class SecretInfo:
    """What a listing shows of a secret: never its value."""

    namespace: str
    name: str
    created_at: float
    updated_at: float
    created_by: str


@dataclass(frozen=True)
class StoredSecret:
    """A secret's row: its value encrypted (security/secrets.py)."""

    info: SecretInfo
    ciphertext: bytes


class SecretRepository(Protocol):
    """Encrypted secrets by (namespace, name)."""

    async def put(self, secret: StoredSecret) -> bool:
        """Add the secret, or replace its ciphertext and `updated_at` (keeping who created it
        and when); True if it was new."""
        ...

    async def get(self, namespace: str, name: str) -> StoredSecret | None: ...

    async def listing(self, namespace: str) -> list[SecretInfo]:
        """The namespace's secrets by name, without their ciphertexts."""
        ...

    async def delete(self, namespace: str, name: str) -> bool: ...
