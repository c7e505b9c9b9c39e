"""The scrape token: what Prometheus sends to read `/metrics`, and nothing else.

It lives in `<data-dir>/metrics.token` (mode 0600), made on first start, so a scrape config can
point `authorization: {credentials_file: …}` at it (a copy of it) without holding a token that
can do anything else. The platform admin's tokens read `/metrics` too.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

PREFIX = "ondo_metrics_"


def ensure_scrape_token(path: Path) -> tuple[str, bool]:
    """The token in `path`, made (256 random bits, file mode 0600) if absent or empty; and
    whether it was made now."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, False
    token = PREFIX + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


class ScrapeToken:
    """Compares a presented token with the scrape token in constant time."""

    def __init__(self) -> None:
        self._token = b""

    def set(self, token: str) -> None:
        self._token = token.encode()

    def matches(self, presented: str) -> bool:
        return bool(self._token) and hmac.compare_digest(presented.encode(), self._token)
