"""The rule sentences of issue 5 on a running platform (manual clock for windows and timers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for

ECHO = """
def handler(event, context):
    return {"function": context.function_name, "event": event}
"""
FUNCTIONS = ("revoke-cover", "ingest-csv", "open-mailbox")

CLAIMS = "on insurance.claim 10 times within 30d per subject do invoke revoke-cover"
CSV = 'on object.created from ftp where key endswith ".csv" do invoke ingest-csv'
LOGIN = "on auth.login about bob do invoke open-mailbox"
HEAT = "on sensor.temperature where celsius > 30 for 10m at most once per 1h do emit alert.heat"
NOTIFY = (
    "on order.placed where total > 1000 do notify sales",
    "on build.failed about main do notify team",
)
DAY = 86400.0


def write_app(root: Path, rules: list[dict[str, Any]]) -> Path:
    functions = {name: {"code": "./echo", "handler": "app.handler"} for name in FUNCTIONS}
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "rulesapp", "functions": functions, "rules": rules}
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "echo").mkdir(exist_ok=True)
    (root / "echo" / "app.py").write_text(ECHO)
    return root


@pytest.fixture
def ondo(tmp_path: Path) -> Iterator[RunningPlatform]:
    app = write_app(tmp_path / "app", [{"name": "bob-login", "when": LOGIN}])
    with RunningPlatform(tmp_path / "data", apps=[app], env={"ONDO_CLOCK": "manual"}) as running:
        yield running


def send(client: httpx.Client, event_id: str, type_: str, **attrs: Any) -> None:
    event = {"specversion": "1.0", "id": event_id, "type": type_, "source": "tests", **attrs}
    response = client.post("/v1/events", json=event)
    assert response.status_code in (200, 202), response.text


def advance(client: httpx.Client, seconds: float) -> None:
    """Dispatch what was sent, move the platform clock, fire the timers that fell due."""
    client.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


def outcomes(client: httpx.Client, event_id: str) -> list[str]:
    advance(client, 0)
    trace = client.get(f"/v1/trace/{event_id}").json()
    return [f"{d['rule']}:{d['stage']}:{d['outcome']}" for d in trace["decisions"]]


def invocations(client: httpx.Client, function: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/functions/{function}/invocations")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["invocations"]
    return [r for r in found if r["status"] not in ("queued", "running")]


def events_of_type(client: httpx.Client, type_: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/events", params={"type": type_}).json()["events"]
    return found


def test_ten_claims_within_30_days_per_subject_revoke_the_cover(ondo: RunningPlatform) -> None:
    added = ondo.cli("rules", "add", CLAIMS, "--name", "claims")
    assert added.returncode == 0, added.stderr
    with ondo.client() as client:
        # alice: ten claims two days apart (18 days); carol: the first falls out of the window
        for i in range(10):
            send(client, f"alice-{i}", "insurance.claim", subject="alice")
            send(client, f"carol-{i}", "insurance.claim", subject="carol")
            advance(client, 2 * DAY if i < 8 else 0)
        assert outcomes(client, "alice-8") == ["claims:event:counted"]
        assert outcomes(client, "alice-9") == ["claims:event:fired"]
        assert outcomes(client, "carol-9") == ["claims:event:fired"]
        revoked = wait_for(lambda: len(invocations(client, "revoke-cover")) == 2 or None)
        assert revoked
        subjects = sorted(
            r["result"]["event"]["subject"] for r in invocations(client, "revoke-cover")
        )
        assert subjects == ["alice", "carol"]
        # the count starts again: one more claim does not fire
        send(client, "alice-10", "insurance.claim", subject="alice")
        assert outcomes(client, "alice-10") == ["claims:event:counted"]
        # a sliding window: claims older than 30 days no longer count
        for i in range(9):
            send(client, f"dave-{i}", "insurance.claim", subject="dave")
            advance(client, 3 * DAY)
        advance(client, 6 * DAY)  # dave-0 is now 33 days old, dave-1 30 days
        send(client, "dave-9", "insurance.claim", subject="dave")
        assert outcomes(client, "dave-9") == ["claims:event:counted"]
        # alice's last claim is 33 days old too: retention deletes it (it no longer counts)
        assert wait_for(
            lambda: client.get("/v1/rules/claims").json()["state"]["counts"] == {"dave": 8}
        )
        # dave never reached ten: no revocation for him (alice's and carol's records are 33
        # days old by now: past the 30 days' retention of invocation records)
        revoked_now = invocations(client, "revoke-cover")
        assert not any(r["result"]["event"]["subject"] == "dave" for r in revoked_now)


def test_csv_objects_from_ftp_are_ingested(ondo: RunningPlatform) -> None:
    with ondo.client() as client:
        created = client.post("/v1/rules", json={"name": "csv", "text": CSV})
        assert created.status_code == 201, created.text
        assert created.json()["compiled"]["pattern"]["data"] == {"key": [{"suffix": ".csv"}]}
        send(client, "o1", "object.created", source="ftp", data={"key": "in/a.csv"})
        send(client, "o2", "object.created", source="ftp/site-2", data={"key": "b.csv"})
        send(client, "o3", "object.created", source="ftp", data={"key": "c.txt"})
        send(client, "o4", "object.created", source="s3", data={"key": "d.csv"})
        assert outcomes(client, "o1") == ["csv:event:fired"]
        assert outcomes(client, "o3") == outcomes(client, "o4") == []
        done = wait_for(lambda: len(invocations(client, "ingest-csv")) == 2 or None)
        assert done
        keys = sorted(
            r["result"]["event"]["data"]["key"] for r in invocations(client, "ingest-csv")
        )
        assert keys == ["b.csv", "in/a.csv"]


def test_bob_logging_in_opens_his_mailbox(ondo: RunningPlatform) -> None:
    listed = ondo.cli("rules", "list")
    assert listed.returncode == 0 and "bob-login" in listed.stdout and LOGIN in listed.stdout
    with ondo.client() as client:
        send(client, "l1", "auth.login", subject="alice")
        send(client, "l2", "auth.login", subject="bob")
        assert outcomes(client, "l1") == []
        assert outcomes(client, "l2") == ["bob-login:event:fired"]
        opened = wait_for(lambda: invocations(client, "open-mailbox"))
        assert [r["result"]["event"]["subject"] for r in opened] == ["bob"]


def test_heat_for_ten_minutes_emits_one_alert_per_hour(ondo: RunningPlatform) -> None:
    added = ondo.cli("rules", "add", HEAT, "--name", "heat")
    assert added.returncode == 0, added.stderr
    with ondo.client() as client:
        send(client, "t1", "sensor.temperature", source="sensor/7", data={"celsius": 35})
        advance(client, 300)
        send(client, "t2", "sensor.temperature", source="sensor/7", data={"celsius": 22})
        advance(client, 600)
        assert outcomes(client, "t1") == ["heat:event:timer started"]
        assert outcomes(client, "t2") == ["heat:event:timer cancelled"]
        send(client, "t3", "sensor.temperature", source="sensor/7", data={"celsius": 31})
        advance(client, 599)
        assert outcomes(client, "t3") == ["heat:event:timer started"]
        advance(client, 1)
        assert outcomes(client, "t3") == ["heat:event:timer started", "heat:timer:fired"]
        alerts = wait_for(lambda: events_of_type(client, "alert.heat"))
        assert len(alerts) == 1
        alert = alerts[0]["event"]
        assert alert["source"] == "ondo/rules/heat" and alert["ondohops"] == 1
        # hot again for ten minutes within the hour: suppressed, recorded as such
        send(client, "t4", "sensor.temperature", source="sensor/7", data={"celsius": 33})
        advance(client, 600)
        assert outcomes(client, "t4") == ["heat:event:timer started", "heat:timer:suppressed"]
        advance(client, 3600)
        send(client, "t5", "sensor.temperature", source="sensor/7", data={"celsius": 33})
        advance(client, 600)
        assert outcomes(client, "t5")[-1] == "heat:timer:fired"
        assert wait_for(lambda: len(events_of_type(client, "alert.heat")) == 2 or None)
        metrics = client.get("/metrics").text
        assert 'ondo_rules_fired_total{namespace="default"} 2.0' in metrics
        assert 'ondo_rules_suppressed_total{namespace="default"} 1.0' in metrics
        assert "ondo_rules_events_dispatched_total" in metrics
    traced = ondo.cli("trace", "t3")
    assert traced.returncode == 0, traced.stderr
    lines = traced.stdout
    assert "event t3 (sensor.temperature from sensor/7)" in lines
    assert "rule heat (its timer" in lines and "fired" in lines
    assert "action 0 emit alert.heat: job" in lines and "succeeded" in lines


def test_a_rule_invoking_a_function_traces_down_to_the_invocation(ondo: RunningPlatform) -> None:
    with ondo.client() as client:
        send(client, "l9", "auth.login", subject="bob")
        wait_for(lambda: invocations(client, "open-mailbox"))
        wait_for(lambda: "invocation" in "\n".join(client.get("/v1/trace/l9").json()["lines"]))
    traced = ondo.cli("trace", "l9")
    assert traced.returncode == 0, traced.stderr
    text = traced.stdout
    assert "rule bob-login (the event" in text and "fired" in text
    assert "action 0 invoke open-mailbox: job" in text
    assert "of open-mailbox v1: succeeded" in text


@pytest.mark.parametrize("sentence", NOTIFY)
def test_notify_to_an_unknown_recipient_is_refused(ondo: RunningPlatform, sentence: str) -> None:
    refused = ondo.cli("rules", "add", sentence)
    assert refused.returncode == 1
    assert "there is no contact or group" in refused.stderr
    with ondo.client() as client:
        response = client.post("/v1/rules", json={"text": sentence})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_rule"
        assert [r["name"] for r in client.get("/v1/rules").json()["rules"]] == ["bob-login"]


def test_syntax_errors_and_unknown_functions_create_nothing(ondo: RunningPlatform) -> None:
    bad = ondo.cli("rules", "add", "on order.placed do dance")
    assert bad.returncode == 1 and "column" in bad.stderr, bad.stderr
    missing = ondo.cli("rules", "add", "on order.placed do invoke ship-order")
    assert missing.returncode == 1 and "ship-order" in missing.stderr
    with ondo.client() as client:
        syntax = client.post("/v1/rules", json={"text": "on order.placed where total > do x"})
        assert syntax.status_code == 400
        assert syntax.json()["error"]["code"] == "rule_syntax"
        unknown = client.post("/v1/rules", json={"text": "on x do invoke ship-order"})
        assert unknown.status_code == 400 and "ship-order" in unknown.json()["error"]["message"]
        zero = client.post(
            "/v1/rules",
            json={
                "name": "zero",
                "pattern": {"type": ["x"]},
                "window": {"kind": "count", "count": 3, "within_s": 0},
                "actions": [{"kind": "emit", "target": "y"}],
            },
        )
        assert zero.status_code == 400
        assert [r["name"] for r in client.get("/v1/rules").json()["rules"]] == ["bob-login"]


def test_rules_test_explains_what_does_not_match(ondo: RunningPlatform, tmp_path: Path) -> None:
    assert ondo.cli("rules", "add", CSV, "--name", "csv").returncode == 0
    event = {"specversion": "1.0", "id": "x", "type": "object.created", "source": "ftp"}
    path = tmp_path / "event.json"
    path.write_text(json.dumps({**event, "data": {"key": "report.pdf"}}))
    tested = ondo.cli("rules", "test", "--event", str(path))
    assert tested.returncode == 0, tested.stderr
    assert "bob-login: does not match" in tested.stdout and "type" in tested.stdout
    csv_line = next(line for line in tested.stdout.splitlines() if line.startswith("csv:"))
    assert "does not match" in csv_line and "key" in csv_line
    path.write_text(json.dumps({**event, "data": {"key": "report.csv"}}))
    only = ondo.cli("rules", "test", "--event", str(path), "--rule", "csv")
    assert only.stdout.strip() == "csv: matches: fires: invoke ingest-csv"
    with ondo.client() as client:
        assert invocations(client, "ingest-csv") == []  # a dry run runs nothing


def test_show_enable_disable_delete(ondo: RunningPlatform) -> None:
    shown = ondo.cli("rules", "show", "bob-login")
    assert shown.returncode == 0, shown.stderr
    assert LOGIN in shown.stdout and '"subject": [' in shown.stdout
    assert ondo.cli("rules", "disable", "bob-login").returncode == 0
    with ondo.client() as client:
        send(client, "d1", "auth.login", subject="bob")
        assert outcomes(client, "d1") == []
        assert ondo.cli("rules", "enable", "bob-login").returncode == 0
        send(client, "d2", "auth.login", subject="bob")
        assert outcomes(client, "d2") == ["bob-login:event:fired"]
        assert ondo.cli("rules", "delete", "bob-login").returncode == 0
        assert client.get("/v1/rules/bob-login").status_code == 404
        send(client, "d3", "auth.login", subject="bob")
        assert outcomes(client, "d3") == []


def test_a_rule_that_emits_its_own_event_stops_after_16_hops(ondo: RunningPlatform) -> None:
    assert ondo.cli("rules", "add", "on ping do emit ping", "--name", "echo").returncode == 0
    with ondo.client() as client:
        send(client, "p0", "ping")

        def last_hop() -> dict[str, Any] | None:
            advance(client, 0)
            pings = events_of_type(client, "ping")
            return next((p["event"] for p in pings if p["event"].get("ondohops") == 17), None)

        looped = wait_for(last_hop)
        assert outcomes(client, looped["id"]) == ["echo:event:dropped: loop"]
        assert len(events_of_type(client, "ping")) == 18  # the original and 17 hops
