"""Signed webhooks: the body's HMAC in a header, as GitHub (`X-Hub-Signature-256: sha256=<hex>`),
Shopify (`{base64}`) and most webhook senders send it. Compared in constant time.

A signature over the body alone can be sent again by whoever saw it once. With
`timestamp_header` the sender signs `TIMESTAMP.BODY` (Stripe's scheme; TIMESTAMP in Unix
seconds, sent in that header): a request older or newer than `max_age` is refused, and so is a
second request with a signature already taken within that window (`ReplayGuard`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ondo.sources.http_payload import Headers
from ondo.sources.http_routes import Hmac
from ondo.sources.replay import ReplayGuard

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


def signature(settings: Hmac, body: bytes, timestamp: bytes | None = None) -> bytes:
    """The header value a sender holding the secret puts on `body` (sent at `timestamp`, when
    the route checks one)."""
    signed = body if timestamp is None else timestamp + b"." + body
    digest = hmac.new(settings.secret, signed, getattr(hashlib, settings.algorithm)).digest()
    if "{hex}" in settings.format:
        return settings.format.replace("{hex}", digest.hex()).encode("latin-1")
    encoded = base64.b64encode(digest).decode("ascii")
    return settings.format.replace("{base64}", encoded).encode("latin-1")


def verified(
    settings: Hmac,
    headers: Headers,
    body: bytes,
    now: float = 0.0,
    guard: ReplayGuard | None = None,
) -> bool:
    """Whether exactly one signature header came and it signs `body` with the secret; with a
    timestamp header, also that it is within `max_age` of `now` and not a replay."""
    sent = _one(headers, settings.header)
    if sent is None:
        return False
    stamp = None
    if settings.timestamp_header is not None:
        stamp = _one(headers, settings.timestamp_header)
        if stamp is None or not _fresh(stamp, now, settings.max_age_s):
            return False
    expected = signature(settings, body, stamp)
    if "{hex}" in settings.format:  # hex digits in either case, as senders differ
        good = hmac.compare_digest(sent.strip().lower(), expected.lower())
    else:
        good = hmac.compare_digest(sent.strip(), expected)
    if not good or stamp is None:
        return good
    return guard is None or guard.first(expected, int(stamp) + settings.max_age_s, now)


def _one(headers: Headers, name: bytes) -> bytes | None:
    sent = [value for key, value in headers if key == name]
    return sent[0] if len(sent) == 1 else None


def _fresh(stamp: bytes, now: float, max_age_s: float) -> bool:
    text = stamp.strip()
    return text.isdigit() and len(text) <= 12 and abs(now - int(text)) <= max_age_s
