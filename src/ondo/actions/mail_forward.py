"""The message `forward` sends: a short note, with the original attached as message/rfc822.

The original travels byte for byte (its headers, DKIM signatures and attachments intact), so
the recipient sees exactly what arrived; the wrapper is ours: From the postmaster of the smtp
source's domain (which the smarthost may send for, unlike the original sender's), To the one
recipient (each recipient gets their own message: no one learns who else was forwarded it),
`Auto-Submitted: auto-forwarded` (RFC 3834: autoresponders do not answer it), and a
Message-ID derived from the action's idempotency key and the recipient, so that a resend after
a crash carries the same Message-ID and mail stores that deduplicate on it keep one copy.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime
from typing import Final

MAX_SUBJECT: Final = 200  # characters of the original subject kept in "Fwd: …"
_LONG_LINE = re.compile(rb"[^\n]{999}")


def forward_message_id(key: str, address: str, domain: str) -> str:
    digest = hashlib.sha256(f"{key}\0{address.lower()}".encode()).hexdigest()[:32]
    return f"<fwd.{digest}@{domain}>"


def forward_message(
    original: bytes,
    *,
    sender: str,
    recipient: str,
    subject: str | None,
    note: str,
    message_id: str,
    now: float,
) -> bytes:
    """The forward of `original` to `recipient` (CRLF line ends throughout, as SMTP wants)."""
    boundary = "ondo-fwd-" + message_id.strip("<>").split("@")[0].replace(".", "-")
    while boundary.encode() in original:  # cannot happen by chance; a hostile original may try
        boundary += "-x"
    body = _crlf(original)
    encoding = "7bit" if body.isascii() else "8bit"
    if _LONG_LINE.search(body):
        encoding = "binary"
    head = [
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: {_header(_fwd(subject))}",
        f"Date: {format_datetime(datetime.fromtimestamp(now, UTC))}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-forwarded",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
    ]
    text = [
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        note,
        f"--{boundary}",
        "Content-Type: message/rfc822",
        f"Content-Transfer-Encoding: {encoding}",
        'Content-Disposition: inline; filename="forwarded.eml"',
        "",
        "",
    ]
    top = "\r\n".join([*head, "", *text]).encode("utf-8")
    return top + body + f"\r\n--{boundary}--\r\n".encode()


def _fwd(subject: str | None) -> str:
    text = " ".join((subject or "").split())[:MAX_SUBJECT]  # no line breaks: no header injection
    if text.lower().startswith(("fwd:", "fw:")):
        return text
    return f"Fwd: {text}" if text else "Fwd: (no subject)"


def _header(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


def _crlf(raw: bytes) -> bytes:
    body = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return body if body.endswith(b"\r\n") else body + b"\r\n"
