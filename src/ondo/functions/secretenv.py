"""Secrets in a function's environment: where the values come from (security/secrets.py, as a
narrow interface), and their removal from what the function leaves behind (its logs, error
and result) before anything is recorded, answered or announced."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

MASK = "***"
MIN_REDACTED_CHARS = 4  # shorter values would mask ordinary words; docs/security.md says so


class SecretValues(Protocol):
    """What the function service uses of the secrets (security/secrets.py `Secrets`)."""

    async def values(self, namespace: str, names: Collection[str], who: str) -> Mapping[str, str]:
        """The decrypted values; Conflict naming the fix when one is not set."""
        ...

    async def missing(self, namespace: str, names: Collection[str]) -> list[str]:
        """Which of `names` are not set in `namespace`."""
        ...


def redaction_of(values: Iterable[str]) -> tuple[str, ...]:
    """The values to mask, longest first (so a value holding another is masked whole)."""
    return tuple(sorted({v for v in values if len(v) >= MIN_REDACTED_CHARS}, key=len, reverse=True))


def redact_text(text: str, secrets: tuple[str, ...]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_json(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` (decoded JSON) with every string, keys too, masked."""
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list):
        return [redact_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact_text(str(k), secrets): redact_json(v, secrets) for k, v in value.items()}
    return value


def holds_secret(value: Any, secrets: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return any(secret in value for secret in secrets)
    if isinstance(value, list):
        return any(holds_secret(item, secrets) for item in value)
    if isinstance(value, dict):
        return any(
            holds_secret(str(k), secrets) or holds_secret(v, secrets) for k, v in value.items()
        )
    return False
