"""A received mail message as event data: addresses, subject, the text body, attachment names.

Mail in the wild is often badly encoded: 8-bit bodies without a charset, charsets Python does
not know, broken base64, malformed address headers. Nothing here raises on such input. The
message is read with the stdlib's lenient `compat32` parser; every header and body is decoded
with its declared charset, else UTF-8, else (when none was declared) Windows-1252, and at last
with replacement characters; what went wrong is listed in `defects` instead of raising.

The data is bounded (text, lists, strings), so that one message always fits in one event.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.message
import email.utils
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

MAX_TEXT_BYTES = 100_000  # the text body kept in the event (UTF-8 bytes)
MAX_LIST = 100  # addresses per header, attachments, defects
MAX_STRING = 998  # a header's value (the longest line RFC 5322 allows)
MAX_ADDRESS = 320


@dataclass
class ParsedMail:
    """What the event says about one message (`data`, see docs/sources/smtp.md)."""

    message_id: str | None
    data: dict[str, Any]
    defects: list[str] = field(default_factory=list)
    unparsed: bool = False  # the parser failed: only the envelope is known


def parse_mail(raw: bytes) -> ParsedMail:
    """The message's fields as event data; never raises on bad input (see the module doc)."""
    defects: list[str] = []
    message = email.message_from_bytes(raw)
    message_id = _message_id(_header(message, "message-id", defects))
    sender = _addresses(message, "from", defects)
    text, truncated = _text_body(message, defects)
    for defect in message.defects:
        defects.append(f"message: {type(defect).__name__}")
    data: dict[str, Any] = {
        "from": sender[0]["address"] if sender else None,
        "from_name": sender[0]["name"] if sender else None,
        "to": [a["address"] for a in _addresses(message, "to", defects)],
        "cc": [a["address"] for a in _addresses(message, "cc", defects)],
        "reply_to": [a["address"] for a in _addresses(message, "reply-to", defects)],
        "subject": _header(message, "subject", defects),
        "date": _header(message, "date", defects),
        "message_id": message_id,
        "text": text,
        "text_truncated": truncated,
        "attachments": _attachments(message, defects)[:MAX_LIST],
    }
    return ParsedMail(message_id, data, _bounded_list(defects))


def decode_bytes(payload: bytes, charset: str | None, where: str, defects: list[str]) -> str:
    """`payload` as text: the declared charset, UTF-8, Windows-1252 (only when none was
    declared: old mail without a charset), then the declared charset or UTF-8 with
    replacement characters, recorded as a defect."""
    if charset is not None and charset.lower() in ("unknown-8bit", "us-ascii", "ascii"):
        charset = None  # raw 8-bit bytes where ASCII was declared or nothing was
    tries = [c for c in (_known(charset, where, defects), "utf-8") if c]
    if charset is None:
        tries.append("cp1252")
    for name in dict.fromkeys(tries):
        try:
            return payload.decode(name)
        except UnicodeDecodeError:
            continue
    defects.append(f"{where}: not valid {tries[0]}; undecodable bytes replaced")
    return payload.decode(tries[0], errors="replace")


def _known(charset: str | None, where: str, defects: list[str]) -> str | None:
    if charset is None:
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        defects.append(f"{where}: unknown charset {charset[:40]!r}")
        return None


def _header(message: email.message.Message, name: str, defects: list[str]) -> str | None:
    """One header, its encoded words decoded; None when absent."""
    value = message.get(name)
    if value is None:
        return None
    return _bounded(_decode_header(value, name, defects), MAX_STRING)


def _decode_header(value: str | email.header.Header, where: str, defects: list[str]) -> str:
    # compat32 gives raw 8-bit headers as a Header of charset unknown-8bit (decode_header
    # below hands back their bytes); surrogate escapes are the same bytes in a str.
    if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
        raw = value.encode("ascii", errors="surrogateescape")
        return " ".join(decode_bytes(raw, None, where, defects).split())
    try:
        parts = email.header.decode_header(value)
    except Exception as exc:  # the stdlib raises several types on malformed encoded words
        defects.append(f"{where}: {exc}")
        return " ".join(str(value).split())
    texts = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            texts.append(chunk)
        else:
            texts.append(decode_bytes(chunk, charset, where, defects))
    joined = "".join(texts) if any(c for _, c in parts) else " ".join(texts)
    return " ".join(joined.split())


def _addresses(
    message: email.message.Message, name: str, defects: list[str]
) -> list[dict[str, str]]:
    values = [_decode_header(v, name, defects) for v in message.get_all(name) or []]
    found = []
    for display, address in email.utils.getaddresses(values):
        if address:
            found.append({"name": _bounded(display, MAX_ADDRESS), "address": address[:MAX_ADDRESS]})
    if values and not found:
        defects.append(f"{name}: no address could be read")
    return found[:MAX_LIST]


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().strip("<>").strip() or None


def _is_attachment(part: email.message.Message) -> bool:
    disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or part.get_filename():
        return True
    return part.get_content_maintype() not in ("text", "multipart", "message")


def _payload(part: email.message.Message, where: str, defects: list[str]) -> bytes:
    payload = part.get_payload(decode=True)
    for defect in part.defects:
        defects.append(f"{where}: {type(defect).__name__}")
    return payload if isinstance(payload, bytes) else b""


def _text_body(message: email.message.Message, defects: list[str]) -> tuple[str, bool]:
    """The first inline text/plain part, else the first text/html part as plain text."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or _is_attachment(part):
            continue
        subtype = part.get_content_type()
        if subtype == "text/plain" and plain is None:
            plain = part
        elif subtype == "text/html" and html is None:
            html = part
    chosen = plain or html
    if chosen is None:
        return "", False
    where = f"body ({chosen.get_content_type()})"
    text = decode_bytes(
        _payload(chosen, where, defects), chosen.get_content_charset(), where, defects
    )
    text = text.replace("\r\n", "\n")
    if chosen is html:
        text = html_text(text)
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= MAX_TEXT_BYTES:
        return text, False
    return encoded[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore"), True


def _attachments(message: email.message.Message, defects: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart() or not _is_attachment(part):
            continue
        filename = part.get_filename()
        name = _decode_header(filename, "attachment name", defects) if filename else None
        found.append(
            {
                "name": _bounded(name, 255) if name else None,
                "size": len(_payload(part, "attachment", defects)),
                "content_type": part.get_content_type(),
            }
        )
    return found


class _HtmlText(HTMLParser):
    """The visible text of an HTML body: tags dropped, scripts and styles skipped."""

    BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _bounded(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_list(items: list[str]) -> list[str]:
    unique = list(dict.fromkeys(items))
    return [_bounded(item, 200) for item in unique[:MAX_LIST]]
