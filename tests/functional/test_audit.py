"""The audit log on a real `ondo up`: what the API and the CLI record and show, refusals at the
door, deploys' real outcome, `ondo audit list --about me`, and `ondo audit verify` after someone
changed the database behind the platform's back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ondo.deploy.bundle import pack
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform, wait_for
from tests.services import POSTGRES_URL

NDJSON = {"Accept": "application/x-ndjson"}
ECHO = "def handler(event, context):\n    return event\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    root = tmp_path_factory.mktemp("audit")
    with RunningPlatform(root / "data") as running:
        yield running


def _token(admin: httpx.Client, principal: str, namespace: str = "default") -> str:
    issued = admin.post("/v1/tokens", json={"principal": principal, "namespace": namespace})
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


def _as(platform: RunningPlatform, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=platform.url, headers=headers, timeout=60)


def _entries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    found = client.get("/v1/audit", params={"limit": 1000, **params})
    assert found.status_code == 200, found.text
    entries: list[dict[str, Any]] = found.json()["entries"]
    return entries


def test_rule_changes_name_the_rule_and_its_subject(platform: RunningPlatform) -> None:
    with platform.client() as admin:
        text = "on health.bp about alice where data.sys > 140 do emit health.alert"
        made = admin.post("/v1/rules", json={"name": "bp-alice", "text": text})
        assert made.status_code == 201, made.text
        assert admin.post("/v1/rules/bp-alice/disable").status_code == 200
        assert admin.delete("/v1/rules/bp-alice").status_code == 200
        assert admin.delete("/v1/rules/bp-alice").status_code == 404
        entries = [e for e in _entries(admin) if e["resource"] == "rule:bp-alice"]
    assert [(e["action"], e["outcome"], e["about"]) for e in entries] == [
        ("POST /v1/rules", "ok", "alice"),
        ("POST /v1/rules/{name}/disable", "ok", "alice"),
        ("DELETE /v1/rules/{name}", "ok", "alice"),
        ("DELETE /v1/rules/{name}", "failed", ""),
    ]
    assert {e["principal"] for e in entries} == {"admin"}
    assert entries[0]["detail"]["owner"] == "admin"
    assert entries[-1]["detail"]["error"] == "not_found"


def test_bad_tokens_are_recorded_by_hash_and_bounded(platform: RunningPlatform) -> None:
    bogus = "ondo_" + "x" * 43
    digest = hashlib.sha256(bogus.encode()).hexdigest()[:8]
    with _as(platform, bogus) as stranger:
        # The invoke fast path hands a call without a valid token to the app, which records it.
        assert stranger.post("/v1/functions/nothing/invoke", json={}).status_code == 401
        answers = [stranger.get("/v1/rules").status_code for _ in range(30)]
    assert answers == [401] * 30
    with platform.client() as admin:
        found = admin.get("/v1/audit", params={"limit": 1000})
    assert bogus not in found.text
    mine = [e for e in found.json()["entries"] if e["detail"].get("token_sha256") == digest]
    assert 2 <= len(mine) <= 10  # at most PER_SOURCE a minute for one peer address
    assert [(e["action"], e["outcome"], e["principal"]) for e in mine[:2]] == [
        ("POST /v1/functions/{name}/invoke", "denied", ""),
        ("GET /v1/rules", "denied", ""),
    ]
    assert mine[0]["detail"]["error"] == "unauthorized"


def test_a_namespace_the_token_may_not_name_is_recorded_where_it_acts(
    platform: RunningPlatform,
) -> None:
    with platform.client() as admin:
        token = _token(admin, "nurse", "clinic")
        with _as(platform, token) as nurse:
            assert nurse.get("/v1/rules", params={"namespace": "default"}).status_code == 404
            assert nurse.delete("/v1/clock/advance").status_code in (404, 405)
        entries = _entries(admin, namespace="clinic", principal="nurse")
    [refused] = [e for e in entries if e["action"] == "GET /v1/rules"]
    assert refused["outcome"] == "denied" and refused["namespace"] == "clinic"
    assert refused["detail"]["asked_namespace"] == ["default"]


def test_a_caller_sees_its_own_trail_only(platform: RunningPlatform) -> None:
    with platform.client() as admin:
        token = _token(admin, "carol")
        with _as(platform, token) as carol:
            made = carol.post("/v1/rules", json={"name": "carol-r", "text": "on c.x do emit c.y"})
            assert made.status_code == 201, made.text
            admin.post(
                "/v1/rules", json={"name": "adm-r", "text": "on a.x about carol do emit a.y"}
            )
            seen = _entries(carol)
            everything = _entries(admin)
            assert carol.get("/v1/audit/verify").status_code == 404  # the platform admin's
    assert {e["resource"] for e in seen} == {"rule:carol-r", "rule:adm-r"}
    assert all(e["principal"] == "carol" or e["about"] == "carol" for e in seen)
    assert len(everything) > len(seen)


def test_a_streamed_deploy_records_its_real_outcome(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    app = write_app(
        tmp_path / "app",
        {"audit-echo": {"code": "./echo", "handler": "app.handler", "timeout": 10}},
        {"echo/app.py": ECHO},
    )
    with platform.client() as admin:
        good = admin.post("/v1/deployments", content=pack(app), headers=NDJSON)
        assert '"result"' in good.text.splitlines()[-1], good.text
        bad = admin.post("/v1/deployments", content=b"not an archive", headers=NDJSON)
        assert bad.status_code == 200 and '"error"' in bad.text.splitlines()[-1]
        entries = [e for e in _entries(admin) if e["action"] == "POST /v1/deployments"]
    ok, failed = entries[-2:]
    assert ok["outcome"] == "ok" and ok["resource"].startswith("app:")
    assert ok["detail"]["changes"] == {"function.create": 1}
    assert failed["outcome"] == "failed" and failed["detail"]["error"]


def test_about_me_shows_who_used_my_data_and_by_which_rule(platform: RunningPlatform) -> None:
    with platform.client() as admin:
        token = _token(admin, "dora")
        text = "on health.hr about dora do emit health.seen"
        assert admin.post("/v1/rules", json={"name": "hr-dora", "text": text}).status_code == 201
        event = {
            "specversion": "1.0",
            "id": "hr-1",
            "source": "tests/audit",
            "type": "health.hr",
            "subject": "dora",
        }
        assert admin.post("/v1/events", json=event).status_code == 202
        with _as(platform, token) as dora:
            wait_for(lambda: dora.get("/v1/audit", params={"about": "@me"}).json()["decisions"])
    shown = platform.cli("audit", "list", "--about", "me", "--token", token)
    assert shown.returncode == 0, shown.stderr
    assert "rule hr-dora on health.hr hr-1" in shown.stdout
    assert "POST /v1/rules rule:hr-dora" in shown.stdout
    as_json = platform.cli("audit", "list", "--about", "me", "--json", "--token", token)
    doc = json.loads(as_json.stdout)
    assert doc["caller"] == "dora" and doc["decisions"][0]["owner"] == "admin"


def _tamper(platform: RunningPlatform, statement: str) -> None:
    """Change the audit table behind the platform's back (someone with database access)."""
    cluster = platform.cluster
    if cluster is None:
        with sqlite3.connect(platform.data_dir / "ondo.db") as conn:
            conn.execute(statement)
        return

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'SET search_path TO "{cluster}"')
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_verify_finds_a_changed_entry_and_a_deleted_tail(tmp_path: Path) -> None:
    with RunningPlatform(tmp_path / "data") as running, running.client() as admin:
        for i in range(4):
            admin.post("/v1/rules", json={"name": f"v{i}", "text": "on v.x do emit v.y"})
        whole = running.cli("audit", "verify")
        assert whole.returncode == 0, whole.stderr
        head = next(line for line in whole.stdout.splitlines() if line.startswith("head "))
        assert head.startswith("head 4:")
        _tamper(running, "DELETE FROM audit_log WHERE seq = 4")
        tail = running.cli("audit", "verify")
        assert tail.returncode == 1 and "broken at entry 4" in tail.stderr, tail.stderr
        (running.data_dir / "audit.head").unlink()  # the file gone too: the kept head still knows
        kept = running.cli("audit", "verify", "--expect", head.removeprefix("head "))
        assert kept.returncode == 1 and "broken at entry 4" in kept.stderr
        _tamper(running, "UPDATE audit_log SET principal = 'mallory' WHERE seq = 2")
        changed = running.cli("audit", "verify")
        assert changed.returncode == 1, changed.stdout
        assert "broken at entry 2" in changed.stderr and "modified" in changed.stderr
