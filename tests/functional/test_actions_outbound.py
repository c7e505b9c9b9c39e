"""notify end to end on a running platform: contacts and groups from ondo.yaml, Apprise json://
channels on a real HTTP server, Bob and Alice's family alerted and Eve not, a template, and a
channel that cannot be reached retried, dead-lettered and shown by `ondo trace`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for
from tests.http_capture import CaptureServer, capture
from tests.platform_ports import closed_port

BP_ALERT = (
    "on health.blood_pressure where systolic > 140 or diastolic > 90"
    " do notify bob.mobile cc alice.family"
)
CRISIS = (
    "on health.blood_pressure where systolic > 180"
    ' do notify bob.email saying "Crisis: systolic {data.systolic} for {subject} ({data.note})"'
)
ALARM = "on device.alarm do notify bob.email cc night.shift"


def write_app(root: Path, port: int, dead_port: int) -> Path:
    def url(path: str) -> str:
        return f"json://127.0.0.1:{port}{path}"

    manifest = {
        "name": "health",
        "contacts": {
            "bob": {"mobile": url("/bob-mobile"), "email": url("/bob-email")},
            "carol": {"mobile": url("/carol-mobile")},
            "dave": {"email": url("/dave-email"), "pager": f"json://127.0.0.1:{dead_port}/pager"},
            "eve": {"mobile": url("/eve-mobile")},
        },
        "groups": {"alice.family": ["carol", "dave.email"], "night.shift": ["dave.pager"]},
        "rules": [
            {"name": "bp-alert", "when": BP_ALERT},
            {"name": "crisis", "when": CRISIS},
            {"name": "alarm", "when": ALARM},
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    yield from capture()


@pytest.fixture
def ondo(tmp_path: Path, server: CaptureServer) -> Iterator[RunningPlatform]:
    app = write_app(tmp_path / "health", server.port, closed_port())
    env = {"ONDO_CLOCK": "manual", "ONDO_ACTION_BACKOFF": "1", "ONDO_ACTION_MAX_ATTEMPTS": "3"}
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as running:
        yield running


def reading(event_id: str, systolic: int, diastolic: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "fitbit",
        "type": "health.blood_pressure",
        "subject": "alice",
        "data": {"systolic": systolic, "diastolic": diastolic, "diagnosis": "confidential"},
    }


def post(client: httpx.Client, event: dict[str, Any]) -> None:
    response = client.post("/v1/events", json=event)
    assert response.status_code in (200, 202), response.text


def messages(server: CaptureServer, path: str) -> list[dict[str, Any]]:
    return [r.json() for r in server.to(path)]


def test_bob_and_the_family_are_alerted_eve_is_not(
    ondo: RunningPlatform, server: CaptureServer
) -> None:
    with ondo.client() as client:
        post(client, reading("normal", 120, 80))
        post(client, reading("high", 150, 85))
        post(client, reading("crisis", 190, 95))
        # Events are decided in order: once the crisis' notes arrived, the others had theirs.
        wait_for(lambda: len(server.to("/bob-mobile")) == 2 and server.to("/bob-email"))
        wait_for(
            lambda: len(server.to("/carol-mobile")) == 2 and len(server.to("/dave-email")) == 2
        )
    high = messages(server, "/bob-mobile")[0]
    assert high["title"] == "bp-alert: health.blood_pressure about alice"
    assert high["message"] == (
        "Rule bp-alert fired on a health.blood_pressure event about alice:"
        " systolic is 150, diastolic is 85."
    )
    assert messages(server, "/carol-mobile")[0]["message"] == high["message"]
    crisis = messages(server, "/bob-email")
    assert [m["message"] for m in crisis] == ["Crisis: systolic 190 for alice ([no data.note])"]
    assert server.to("/eve-mobile") == []
    assert all(b"confidential" not in r.body for r in server.requests)
    assert len(server.requests) == 7  # the normal reading alerted no one

    traced = ondo.cli("trace", "high")
    assert traced.returncode == 0, traced.stderr
    text = traced.stdout
    assert "action 0 notify bob.mobile: job" in text and "succeeded after 1 attempt(s)" in text
    assert "attempt 1: reached bob.mobile (to, json://1***) at " in text
    assert "attempt 1: reached carol.mobile (cc, json://1***)" in text
    assert "attempt 1: reached dave.email (cc, json://1***)" in text
    assert "eve." not in text and "reached eve" not in text


def test_an_unreachable_channel_is_retried_dead_lettered_and_traced(
    ondo: RunningPlatform, server: CaptureServer
) -> None:
    with ondo.client() as client:
        post(
            client,
            {"specversion": "1.0", "id": "alarm-1", "source": "sensor", "type": "device.alarm"},
        )

        def dead() -> list[dict[str, Any]]:
            client.post("/v1/clock/advance", json={"seconds": 5}).raise_for_status()
            found: list[dict[str, Any]] = client.get("/v1/dlq").json()["dead_letters"]
            return found

        job = wait_for(dead)[0]
    assert job["rule"] == "alarm" and job["kind"] == "notify" and job["attempts"] == 3
    error = job["last_error"]
    assert error["error"].startswith("could not reach dave.pager (json://1***): ")
    assert error["reached"] == ["bob.email"]
    tried = [(d["recipient"], d["ok"], d["attempt"]) for d in error["deliveries"]]
    assert tried == [
        ("bob.email", True, 1),
        ("dave.pager", False, 1),
        ("dave.pager", False, 2),
        ("dave.pager", False, 3),
    ]
    assert len(server.to("/bob-email")) == 1  # reached once; only dave's pager was retried
    assert (
        messages(server, "/bob-email")[0]["message"] == "Rule alarm fired on a device.alarm event."
    )

    traced = ondo.cli("trace", "alarm-1")
    assert traced.returncode == 0, traced.stderr
    text = traced.stdout
    assert "action 0 notify bob.email: job" in text and "dead after 3 attempt(s)" in text
    assert "last error: could not reach dave.pager (json://1***)" in text
    assert "attempt 1: reached bob.email (to, json://1***)" in text
    for attempt in (1, 2, 3):
        assert f"attempt {attempt}: could not reach dave.pager (cc, json://1***)" in text
    shown = ondo.cli("dlq", "show", str(job["id"]), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["kind"] == "notify"


def test_a_rule_naming_an_unknown_recipient_is_refused(ondo: RunningPlatform) -> None:
    refused = ondo.cli("rules", "add", "on x do notify frank.mobile")
    assert refused.returncode == 1
    assert "there is no contact or group 'frank.mobile'" in refused.stderr
    wrong = ondo.cli("rules", "add", "on x do notify bob.pager")
    assert "contact 'bob' has no channel 'pager' (it has email, mobile)" in wrong.stderr
    template = ondo.cli("rules", "add", 'on x do notify bob saying "hi {name}"')
    assert template.returncode == 1 and "{name} is not a field" in template.stderr
    added = ondo.cli("rules", "add", "--name", "copy", "on x do notify eve cc alice.family")
    assert added.returncode == 0, added.stderr
