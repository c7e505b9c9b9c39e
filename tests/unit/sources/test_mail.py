"""Mail as event data (sources/mail.py): bodies, charsets, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ondo.sources.mail import MAX_LIST, MAX_TEXT_BYTES, parse_mail
from ondo.sources.mailspool import message_path


def test_html_only_mail_gives_its_visible_text() -> None:
    raw = (
        b"Subject: news\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p {color: red}</style><script>alert(1)</script></head>"
        b"<body><p>Gr\xc3\xbc&szlig;e,</p><p>the <b>news</b> &amp; more</p></body></html>\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.data["text"] == "Grüße,\nthe news & more"
    assert parsed.defects == []


def test_alternative_mail_prefers_the_plain_part() -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
        b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nplain =E9t=E9\r\n"
        b"--b--\r\n"
    )
    parsed = parse_mail(raw)
    assert parsed.data["text"] == "plain été"  # the CRLF before a boundary is its own
    assert parsed.data["attachments"] == []


def test_utf8_without_a_charset_is_read_as_utf8_and_bad_utf8_is_replaced() -> None:
    assert parse_mail(b"Subject: x\r\n\r\nna\xc3\xafve\r\n").data["text"] == "naïve\n"
    bad = parse_mail(b"Content-Type: text/plain; charset=utf-8\r\n\r\nok \xff ok\r\n")
    assert bad.data["text"] == "ok \ufffd ok\n"
    assert bad.defects == ["body (text/plain): not valid utf-8; undecodable bytes replaced"]


def test_a_huge_body_and_long_lists_are_bounded() -> None:
    to = ", ".join(f"user{i}@example.org" for i in range(500))
    raw = f"To: {to}\r\n\r\n".encode() + "é".encode() * MAX_TEXT_BYTES
    parsed = parse_mail(raw)
    assert parsed.data["text_truncated"] is True
    assert len(parsed.data["text"].encode()) == MAX_TEXT_BYTES
    assert len(parsed.data["to"]) == MAX_LIST and parsed.data["to"][0] == "user0@example.org"


def test_garbage_is_still_a_message_with_defects() -> None:
    parsed = parse_mail(b"\x00\xff\xfe not a header at all\r\n\r\n\xff")
    assert parsed.message_id is None and parsed.data["from"] is None
    assert isinstance(parsed.data["text"], str)


def test_a_message_ref_cannot_lead_out_of_the_spool(tmp_path: Path) -> None:
    assert message_path(tmp_path, "0" * 32) == tmp_path / "messages" / f"{'0' * 32}.eml"
    with pytest.raises(ValueError, match="not a spool reference"):
        message_path(tmp_path, "../../etc/passwd")
