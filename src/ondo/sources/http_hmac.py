"""Signed webhooks: the body's HMAC in a header, as GitHub (`X-Hub-Signature-256: sha256=<hex>`),
Shopify (`{base64}`) and most webhook senders send it. Compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

from ondo.sources.http_payload import Headers
from ondo.sources.http_routes import Hmac

ALGORITHMS = ("sha256", "sha1", "sha512")
DEFAULT_HEADER = "X-Hub-Signature-256"
DEFAULT_FORMAT = "sha256={hex}"
PLACEHOLDERS = ("{hex}", "{base64}")


def format_problem(text: str) -> str | None:
    """Why `text` cannot be a signature format (None when it can)."""
    found = [p for p in PLACEHOLDERS if p in text]
    if len(found) != 1 or text.count(found[0]) != 1:
        return "must contain exactly one of {hex} or {base64}, e.g. 'sha256={hex}'"
    return None


def signature(settings: Hmac, body: bytes) -> bytes:
    """The header value a sender holding the secret puts on `body`."""
    digest = hmac.new(settings.secret, body, getattr(hashlib, settings.algorithm)).digest()
    if "{hex}" in settings.format:
        return settings.format.replace("{hex}", digest.hex()).encode("latin-1")
    encoded = base64.b64encode(digest).decode("ascii")
    return settings.format.replace("{base64}", encoded).encode("latin-1")


def verified(settings: Hmac, headers: Headers, body: bytes) -> bool:
    """Whether exactly one signature header came and it signs `body` with the secret."""
    sent = [value for name, value in headers if name == settings.header]
    if len(sent) != 1:
        return False
    expected = signature(settings, body)
    if "{hex}" in settings.format:  # hex digits in either case, as senders differ
        return hmac.compare_digest(sent[0].strip().lower(), expected.lower())
    return hmac.compare_digest(sent[0].strip(), expected)
