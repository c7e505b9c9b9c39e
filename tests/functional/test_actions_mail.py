"""Scenario 3 on a real `ondo up` (either backend): Bob mails Alice about exams through the smtp
source; Alice receives it (relayed by the source), Trent receives a blind copy (the same bytes),
Alice's copy does not reveal Trent, and the archive gets a forward with the original attached.
A refused recipient is dead-lettered and `ondo trace` shows each delivery, addresses masked."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.functional.platform import RunningPlatform, free_port, wait_for

BCC = 'on mail.received from mail where subject contains "exam" do bcc trent@example.org'
FORWARD = (
    'on mail.received from mail where subject contains "exam"'
    " do forward to archive@example.net, nobody@example.net"
)


@dataclass
class Capture:
    """The smarthost: keeps every message it accepts; refuses nobody@example.net for good."""

    received: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == "nobody@example.net":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"

    def to(self, address: str) -> list[bytes]:
        return [e.original_content or b"" for e in self.received if address in e.rcpt_tos]


@pytest.fixture
def smarthost() -> Iterator[tuple[Capture, int]]:
    capture, port = Capture(), free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield capture, port
    finally:
        controller.stop()


def write_app(root: Path, port: int, relay: int) -> Path:
    manifest = {
        "name": "exams",
        "sources": {
            "mail": {
                "kind": "smtp",
                "port": port,
                "domains": ["example.org"],
                "smarthost": {"host": "127.0.0.1", "port": relay, "tls": "none"},
            }
        },
        "rules": [{"name": "copy-trent", "when": BCC}, {"name": "archive", "when": FORWARD}],
    }
    root.mkdir(parents=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def exam_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bob <bob@outside.test>"
    message["To"] = "Alice <alice@example.org>"
    message["Subject"] = "exam marks"
    message["Message-ID"] = "<exam-42@outside.test>"
    message.set_content("Alice, the exam marks are in.\n")
    return message


def connected(client: httpx.Client) -> bool:
    response = client.get("/v1/sources/mail")
    return response.status_code == 200 and response.json().get("state") == "connected"


def dead(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/dlq").json()["dead_letters"]
    return found


def test_bob_mails_alice_trent_gets_a_blind_copy_the_archive_a_forward(
    tmp_path: Path, smarthost: tuple[Capture, int]
) -> None:
    capture, relay = smarthost
    port = free_port()
    app = write_app(tmp_path / "exams", port, relay)
    with RunningPlatform(tmp_path / "data", apps=[app]) as ondo, ondo.client() as client:
        wait_for(lambda: connected(client))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as sender:
            sender.send_message(exam_mail(), "bob@outside.test", ["alice@example.org"])
        wait_for(lambda: capture.to("alice@example.org") and capture.to("trent@example.org"))
        wait_for(lambda: capture.to("archive@example.net"))
        (job,) = wait_for(lambda: dead(client))
        refused = ondo.cli("rules", "add", "on order.created do bcc trent@example.org")
        trace = ondo.cli("trace", job["event_id"])
    (alice,) = capture.to("alice@example.org")
    (trent,) = capture.to("trent@example.org")
    assert trent == alice  # the original bytes, unchanged
    assert b"trent" not in alice.lower()
    assert b"Subject: exam marks" in alice and b"Alice, the exam marks are in." in alice

    (forwarded,) = capture.to("archive@example.net")
    parsed = email.message_from_bytes(forwarded, policy=email.policy.default)
    assert parsed["Subject"] == "Fwd: exam marks" and parsed["To"] == "archive@example.net"
    assert parsed["From"] == "ondo <postmaster@example.org>"
    _note, attached = parsed.iter_parts()
    assert attached.get_content_type() == "message/rfc822"
    assert alice in forwarded  # the original inside, byte for byte

    assert job["rule"] == "archive" and job["kind"] == "forward" and job["attempts"] == 1
    assert job["last_error"]["reached"] == ["a***@example.net"]
    assert "n***@example.net): 550 5.1.1 no such user" in job["last_error"]["error"]

    assert refused.returncode == 1
    assert "acts on mail.received events only" in refused.stderr

    assert trace.returncode == 0, trace.stderr
    text = trace.stdout
    assert "action 0 bcc trent@example.org: job" in text
    assert "attempt 1: reached t***@example.org (bcc, t***@example.org) at " in text
    assert "attempt 1: reached a***@example.net (forward, a***@example.net)" in text
    assert "attempt 1: could not reach n***@example.net (forward, n***@example.net)" in text
