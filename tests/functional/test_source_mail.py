"""Mail sent with smtplib to an smtp source drives a rule that invokes a function, on a real
`ondo up` (either backend); the source shows as connected with its counters."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.functional.platform import RunningPlatform, free_port, wait_for

RECORD = """
def handler(event, context):
    return {"event": event}
"""
RULE = (
    'on mail.received from mail where "bob@example.org" in to and subject contains "invoice"'
    ' and attachments.name endswith ".pdf" do invoke record'
)


def write_app(root: Path, port: int) -> Path:
    manifest = {
        "name": "mailapp",
        "functions": {"record": {"code": "./record", "handler": "app.handler"}},
        "sources": {"mail": {"kind": "smtp", "port": port, "domains": ["example.org"]}},
        "rules": [{"name": "invoices", "when": RULE}],
    }
    (root / "record").mkdir(parents=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "record" / "app.py").write_text(RECORD)
    return root


def message(subject: str, attachment: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@outside.test>"
    mail["To"] = "bob@example.org"
    mail["Subject"] = subject
    mail.set_content("Please find it attached.")
    mail.add_attachment(b"%PDF-1.4 data", "application", "octet-stream", filename=attachment)
    return mail


def done(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/functions/record/invocations")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["invocations"]
    return [r for r in found if r["status"] not in ("queued", "running")]


def mail_source(client: httpx.Client) -> dict[str, Any] | None:
    response = client.get("/v1/sources/mail")
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()
    return found


def test_mail_to_the_smtp_source_invokes_the_rules_function(tmp_path: Path) -> None:
    port = free_port()
    app = write_app(tmp_path / "app", port)
    with RunningPlatform(tmp_path / "data", apps=[app]) as ondo, ondo.client() as client:
        wait_for(lambda: (mail_source(client) or {}).get("state") == "connected")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as sender:
            sender.send_message(message("a photo", "cat.jpg"))  # the rule does not match
            sender.send_message(message("invoice 42", "invoice-42.pdf"))
            try:
                sender.sendmail(
                    "x@outside.test", ["eve@elsewhere.test"], b"Subject: relay?\r\n\r\n"
                )
                raise AssertionError("a recipient in another domain was accepted")
            except smtplib.SMTPRecipientsRefused as refused:
                assert refused.recipients["eve@elsewhere.test"][0] == 550
        (run,) = wait_for(lambda: done(client))
        assert run["status"] == "succeeded", run
        event = run["result"]["event"]
        assert (event["type"], event["source"], event["subject"]) == (
            "mail.received",
            "mail",
            "bob@example.org",
        )
        assert event["data"]["subject"] == "invoice 42"
        assert event["data"]["from"] == "alice@outside.test"
        assert event["data"]["attachments"] == [
            {"name": "invoice-42.pdf", "size": 13, "content_type": "application/octet-stream"}
        ]
        status = wait_for(lambda: (s := mail_source(client)) and s["events"] == 2 and s)
        assert status["errors"] == 0
        shown = ondo.cli("sources", "show", "mail")
        assert shown.returncode == 0 and "example.org" in shown.stdout, shown.stderr
