"""Consent end to end on a real `ondo up` (the run's backend), driven through the CLI with each
person's own token: in namespace `clinic`, Bob (developer, Alice's GP) cannot write his rule on
Alice's blood pressure until Alice (citizen) grants it; a high reading then reaches Bob's mobile
(an HTTP server capturing Apprise `json://` posts); once she revokes, the rule is disabled with
the reason and the next high reading reaches no one. A rule of Bob's without `about` fires only
for the patients who granted him, with only the fields they allowed, and an expired grant
stops it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ondo.backends.store.repositories.tokens import Role
from tests.functional.platform import RunningPlatform, wait_for
from tests.http_capture import CaptureServer, capture

NS = "clinic"
SECRET = "test-webhook-secret"
BP = "on health.blood_pressure about alice where systolic > 140 do notify bob.mobile"


@pytest.fixture
def phone() -> Iterator[CaptureServer]:
    """Bob's mobile and his practice's webhook receiver."""
    yield from capture()


@dataclass
class Clinic:
    platform: RunningPlatform
    tokens: dict[str, str]

    def ondo(self, who: str, *args: str) -> tuple[int, str]:
        """`ondo ARGS` run by `who` with their own token: (exit code, stdout + stderr)."""
        done = self.platform.cli("--token", self.tokens[who], *args)
        return done.returncode, done.stdout + done.stderr

    def reading(self, subject: str, systolic: int, **more: Any) -> str:
        """A Fitbit's reading (emitted by the admin, as the mqtt source would); its id."""
        event_id = f"bp-{uuid.uuid4().hex[:12]}"
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": "fitbit",
            "type": "health.blood_pressure",
            "subject": subject,
            "data": {"systolic": systolic, "diastolic": 85, **more},
        }
        with self.platform.client() as admin:
            posted = admin.post("/v1/events", json=event, params={"namespace": NS})
            assert posted.status_code == 202, posted.text
        return event_id

    def decisions(self, event_id: str, count: int) -> dict[str, dict[str, Any]]:
        """The rules' decisions on the event, once `count` rules decided it, by rule."""

        def decided() -> list[dict[str, Any]] | None:
            with self.platform.client() as admin:
                trace = admin.get(f"/v1/trace/{event_id}", params={"namespace": NS}).json()
            found = trace.get("decisions", [])
            return found if len(found) >= count else None

        return {d["rule"]: d for d in wait_for(decided)}


@pytest.fixture
def clinic(tmp_path: Path, phone: CaptureServer) -> Iterator[Clinic]:
    env = {"ONDO_WEBHOOK_SECRET": SECRET, "ONDO_CLOCK": "manual"}
    with RunningPlatform(tmp_path / "data", env=env) as platform:
        people: dict[str, Role] = {"alice": "citizen", "carol": "citizen", "bob": "developer"}
        tokens = {}
        for name, role in people.items():  # the admin adds them; the last line is the token
            done = platform.cli("users", "add", name, "--role", role, "--namespace", NS)
            assert done.returncode == 0, done.stdout + done.stderr
            tokens[name] = done.stdout.strip().splitlines()[-1]
        with platform.client() as admin:
            mobile = {"channels": {"mobile": f"json://127.0.0.1:{phone.port}/bob-mobile"}}
            put = admin.put("/v1/contacts/bob", json=mobile, params={"namespace": NS})
            assert put.status_code in (200, 201), put.text
            # the admin's own rule on every reading: proof that a reading was decided
            seen = {"text": "on health.blood_pressure do emit bp.seen", "name": "seen"}
            assert admin.post("/v1/rules", json=seen, params={"namespace": NS}).status_code == 201
        yield Clinic(platform, tokens)


def test_bob_needs_alices_grant_and_loses_his_rule_when_she_revokes(
    clinic: Clinic, phone: CaptureServer
) -> None:
    code, out = clinic.ondo("bob", "rules", "add", BP, "--name", "bp")
    assert code != 0 and "about alice" in out, out
    assert "ondo grants add --to bob --types 'health.blood_pressure'" in out

    code, out = clinic.ondo("alice", "grants", "add", "--to", "bob", "--types", "health.*")
    assert code == 0, out
    grant_id = out.strip().splitlines()[-1]
    assert grant_id.startswith("grt_")
    for who in ("alice", "bob"):  # the one who gave it and the one who holds it
        code, out = clinic.ondo(who, "grants", "list")
        assert code == 0 and grant_id in out and "health.*" in out, out
    code, out = clinic.ondo("carol", "grants", "list")
    assert grant_id not in out
    code, out = clinic.ondo("bob", "grants", "revoke", grant_id)  # only alice may
    assert code != 0, out

    code, out = clinic.ondo("bob", "rules", "add", BP, "--name", "bp")
    assert code == 0, out
    high = clinic.reading("alice", 150)
    decided = clinic.decisions(high, 2)
    assert decided["bp"]["outcome"] == "fired" and decided["bp"]["grant"] == grant_id
    code, out = clinic.ondo("bob", "trace", high)
    assert f"allowed by alice's grant {grant_id}" in out, out
    alert = wait_for(lambda: phone.to("/bob-mobile"))
    assert "alice" in alert[0].json()["title"]

    code, out = clinic.ondo("alice", "grants", "revoke", grant_id)
    assert code == 0 and "disabled rule bp of bob" in out, out
    code, out = clinic.ondo("bob", "rules", "list")
    assert "bp: disabled by ondo: alice revoked consent grant" in out, out
    code, out = clinic.ondo("bob", "rules", "enable", "bp")  # not without a new grant
    assert code != 0 and "ondo grants add --to bob" in out, out

    again = clinic.reading("alice", 160)
    assert set(clinic.decisions(again, 1)) == {"seen"}  # the disabled rule decides nothing
    assert len(phone.to("/bob-mobile")) == 1


def test_bobs_rule_without_about_fires_only_for_who_granted_with_only_the_allowed_fields(
    clinic: Clinic, phone: CaptureServer
) -> None:
    hook = f"http://127.0.0.1:{phone.port}/bob-hook"
    anyone = f'on health.blood_pressure where systolic > 140 do webhook "{hook}"'
    code, out = clinic.ondo("bob", "rules", "add", anyone, "--name", "anyone")
    assert code == 0, out  # it names no one: consent is asked each time it fires
    code, out = clinic.ondo(
        "alice", "grants", "add", "--to", "bob", "--types", "health.*", "--fields", "systolic"
    )
    grant_id = out.strip().splitlines()[-1]

    alices = clinic.reading("alice", 150, pulse=72)
    carols = clinic.reading("carol", 170, pulse=90)
    fired = clinic.decisions(alices, 2)["anyone"]
    assert fired["outcome"] == "fired" and fired["grant"] == grant_id
    refused = clinic.decisions(carols, 2)["anyone"]
    assert refused["outcome"] == "no consent" and refused["grant"] == ""
    assert "about carol" in refused["detail"]
    (posted,) = wait_for(lambda: phone.to("/bob-hook"))
    event = posted.json()
    assert event["subject"] == "alice" and event["data"] == {"systolic": 150}


def test_an_expired_grant_stops_bobs_rule(clinic: Clinic, phone: CaptureServer) -> None:
    code, out = clinic.ondo(
        "alice", "grants", "add", "--to", "bob", "--types", "health.*", "--expires", "1h"
    )
    assert code == 0, out
    code, out = clinic.ondo("bob", "rules", "add", BP, "--name", "bp")
    assert code == 0, out
    with clinic.platform.client() as admin:  # the platform's manual clock
        assert admin.post("/v1/clock/advance", json={"seconds": 3601}).status_code == 200
    late = clinic.reading("alice", 155)
    decided = clinic.decisions(late, 2)["bp"]
    assert decided["outcome"] == "no consent" and "expired" in decided["detail"]
    assert phone.to("/bob-mobile") == []
