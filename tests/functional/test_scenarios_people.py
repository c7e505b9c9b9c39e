"""The founding scenarios that reach people (issue 13), each deployed from its directory under
examples/ onto a real `ondo up`: Mosquitto carries the Fitbit's readings, an HTTP server captures
Apprise `json://` posts (a mobile), and aiosmtpd servers capture the mail (a family's mailboxes,
a smarthost); smtplib is the mail sender."""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.functional.platform import RunningPlatform, free_port, wait_for
from tests.functional.test_actions_mail import Capture, connected, exam_mail
from tests.functional.test_scenarios import with_changes
from tests.functional.test_source_mqtt import publish
from tests.http_capture import CaptureServer, capture
from tests.services import require_mqtt


@pytest.fixture
def phone() -> Iterator[CaptureServer]:
    """Bob's mobile: an HTTP server capturing Apprise `json://` posts."""
    yield from capture()


@pytest.fixture
def mail_server() -> Iterator[tuple[Capture, int]]:
    """A real SMTP server (aiosmtpd) keeping every message it accepts."""
    kept, port = Capture(), free_port()
    controller = Controller(kept, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield kept, port
    finally:
        controller.stop()


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def events(api: httpx.Client, type_: str) -> list[dict[str, Any]]:
    found = api.get("/v1/events", params={"type": type_}).json()["events"]
    return [stored["event"] for stored in found]


def fired(api: httpx.Client, event_id: str) -> list[str]:
    trace = api.get(f"/v1/trace/{event_id}").json()
    return [d["rule"] for d in trace["decisions"] if d["outcome"] == "fired"]


# 1. healthcare ---------------------------------------------------------------------------------


def mailto(port: int, to: str) -> str:
    return f"mailto://127.0.0.1:{port}?from=ondo@clinic.example&to={to}"


@pytest.fixture
def clinic(
    tmp_path: Path, phone: CaptureServer, mail_server: tuple[Capture, int]
) -> Iterator[tuple[RunningPlatform, str]]:
    """examples/healthcare with its topics under a prefix of their own on the shared Mosquitto,
    Bob's mobile the HTTP capture server, and the mail of Alice's family the SMTP capture."""
    require_mqtt()
    prefix = f"ondo-test-{uuid.uuid4().hex[:10]}/fitbit"
    _, smtp = mail_server
    topic = {"topic": f"{prefix}/{{subject}}/bp", "type": "health.blood_pressure"}
    app = with_changes(
        "healthcare",
        tmp_path,
        {
            "sources/fitbit": {"topics": [topic]},
            "contacts/bob": {"mobile": f"json://127.0.0.1:{phone.port}/bob-mobile"},
            "contacts/carol": {"email": mailto(smtp, "carol@example.org")},
            "contacts/dave": {"email": mailto(smtp, "dave@example.org")},
            "contacts/eve": {"email": mailto(smtp, "eve@example.org")},
        },
    )
    with RunningPlatform(tmp_path / "data", apps=[app]) as running:
        with running.client() as api:
            wait_for(lambda: api.get("/v1/sources/fitbit").json()["state"] == "connected")
        yield running, prefix


@pytest.mark.mqtt
def test_healthcare_a_high_reading_alerts_bob_and_mails_alices_family_not_eve(
    clinic: tuple[RunningPlatform, str], phone: CaptureServer, mail_server: tuple[Capture, int]
) -> None:
    platform, prefix = clinic
    mailboxes, _ = mail_server
    # a normal reading of alice's, a high one of another patient's, then a high one of alice's
    publish(f"{prefix}/alice/bp", json.dumps({"systolic": 118, "diastolic": 76, "pulse": 64}))
    publish(f"{prefix}/frank/bp", json.dumps({"systolic": 170, "diastolic": 100, "pulse": 80}))
    publish(f"{prefix}/alice/bp", json.dumps({"systolic": 150, "diastolic": 85, "pulse": 72}))
    wait_for(lambda: phone.to("/bob-mobile"))
    wait_for(lambda: mailboxes.to("carol@example.org") and mailboxes.to("dave@example.org"))
    with platform.client() as api:
        wait_for(lambda: len(events(api, "health.blood_pressure")) == 3)
        readings = events(api, "health.blood_pressure")
        assert [(e["subject"], e["data"]["systolic"]) for e in readings] == [
            ("alice", 118),
            ("frank", 170),
            ("alice", 150),
        ]
        normal, other, high = (e["id"] for e in readings)
        assert fired(api, high) == ["bp-alert"]
        assert fired(api, normal) == [] and fired(api, other) == []
        trace = platform.cli("trace", high)

    # Bob's mobile: one alert, naming what the rule tested and nothing else of the reading
    (alert,) = [r.json() for r in phone.to("/bob-mobile")]
    assert alert["title"] == "bp-alert: health.blood_pressure about alice"
    assert alert["message"] == (
        "Rule bp-alert fired on a health.blood_pressure event about alice:"
        " systolic is 150, diastolic is 85."
    )
    assert "pulse" not in json.dumps(alert)
    # her family: one mail each, the same words; Eve, a contact outside the family, gets nothing
    for member in ("carol@example.org", "dave@example.org"):
        (raw,) = mailboxes.to(member)
        mail = parsed(raw)
        assert mail["To"] == member and mail["From"] == "ondo@clinic.example"
        assert mail["Subject"] == "bp-alert: health.blood_pressure about alice"
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        assert "systolic is 150, diastolic is 85" in body.get_content()
        assert b"pulse" not in raw and b"frank" not in raw
    assert mailboxes.to("eve@example.org") == []
    assert len(mailboxes.received) == 2
    # `ondo trace` says who was reached on which channel, the addresses masked
    assert trace.returncode == 0, trace.stderr
    assert "reached bob.mobile (to, json://1***)" in trace.stdout
    assert "reached carol.email (cc, c***@example.org)" in trace.stdout
    assert "reached dave.email (cc, d***@example.org)" in trace.stdout
    assert "eve." not in trace.stdout and "e***@" not in trace.stdout


# 3. mail ---------------------------------------------------------------------------------------


@pytest.fixture
def post_office(
    tmp_path: Path, mail_server: tuple[Capture, int]
) -> Iterator[tuple[RunningPlatform, int]]:
    """examples/mail listening on a free port, relaying through the SMTP capture (the smarthost)."""
    _, relay = mail_server
    port = free_port()
    app = with_changes(
        "mail",
        tmp_path,
        {"sources/mail": {"port": port}, "sources/mail/smarthost": {"port": relay}},
    )
    with RunningPlatform(tmp_path / "data", apps=[app]) as running:
        with running.client() as api:
            wait_for(lambda: connected(api))
        yield running, port


def lunch_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bob <bob@outside.test>"
    message["To"] = "Alice <alice@example.org>"
    message["Subject"] = "lunch on friday?"
    message["Message-ID"] = "<lunch-7@outside.test>"
    message.set_content("Alice, lunch on Friday?\n")
    return message


def test_mail_bob_mails_alice_about_exams_trent_gets_a_blind_copy_alice_cannot_tell(
    post_office: tuple[RunningPlatform, int], mail_server: tuple[Capture, int]
) -> None:
    platform, port = post_office
    smarthost, _ = mail_server
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as bob:
        bob.send_message(lunch_mail(), "bob@outside.test", ["alice@example.org"])
        bob.send_message(exam_mail(), "bob@outside.test", ["alice@example.org"])
    wait_for(lambda: len(smarthost.to("alice@example.org")) == 2)
    wait_for(lambda: smarthost.to("trent@example.org"))
    with platform.client() as api:
        received = events(api, "mail.received")
        assert [e["data"]["subject"] for e in received] == ["lunch on friday?", "exam marks"]
        lunch, exams = (e["id"] for e in received)
        assert fired(api, exams) == ["copy-trent"]
        assert fired(api, lunch) == []  # not about exams: no copy
        trace = platform.cli("trace", exams)
    lunch_copy, alice = smarthost.to("alice@example.org")
    assert b"Subject: lunch on friday?" in lunch_copy
    # Trent's blind copy is the very message Alice received, which names Trent nowhere
    (trent,) = smarthost.to("trent@example.org")
    assert trent == alice
    assert b"trent" not in alice.lower()
    mail = parsed(alice)
    assert mail["Subject"] == "exam marks" and mail["To"] == "Alice <alice@example.org>"
    assert mail["Bcc"] is None and mail["Cc"] is None
    assert "the exam marks are in" in mail.get_content()
    # two envelopes for the exam mail: the relay to Alice, and the copy to Trent alone
    envelopes = [e.rcpt_tos for e in smarthost.received]
    assert sorted(envelopes) == [["alice@example.org"]] * 2 + [["trent@example.org"]]
    assert all(
        e.mail_from == "postmaster@example.org"
        for e in smarthost.received
        if e.rcpt_tos == ["trent@example.org"]
    )
    assert trace.returncode == 0, trace.stderr
    assert "action 0 bcc trent@example.org: job" in trace.stdout
    assert "attempt 1: reached t***@example.org (bcc, t***@example.org) at " in trace.stdout
