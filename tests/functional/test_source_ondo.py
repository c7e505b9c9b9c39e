"""The `ondo` source on a real `ondo up`: "when an invocation of billing fails 3 times within 10m,
invoke alert" works as written, and deploys, rule changes and dead letters become events with
source `ondo`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for

BILLING = """
def handler(event, context):
    raise RuntimeError("card declined for " + event["subject"])
"""
ALERT = """
def handler(event, context):
    return {"type": event["type"], "function": event["data"]["function"],
            "hops": event.get("ondohops")}
"""
WHEN_FAILS = (
    'on ondo.invocation.failed from ondo where function == "billing" 3 times within 10m'
    " do invoke alert"
)


def write_app(root: Path) -> Path:
    for name, code in (("billing", BILLING), ("alert", ALERT)):
        (root / name).mkdir(parents=True)
        (root / name / "app.py").write_text(code)
    manifest = {
        "name": "shop",
        "functions": {
            "billing": {"handler": "app.handler", "code": "billing"},
            "alert": {"handler": "app.handler", "code": "alert"},
        },
        "sources": {"ops": {"kind": "ondo"}},
        "rules": [
            {"name": "bill", "when": "on bill.due do invoke billing"},
            {"name": "billing-fails", "when": WHEN_FAILS},
        ],
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    return root


@pytest.fixture
def ondo(tmp_path: Path) -> Iterator[RunningPlatform]:
    app = write_app(tmp_path / "shop")
    env = {"ONDO_ACTION_MAX_ATTEMPTS": "1"}
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as running:
        yield running


def invocations(client: httpx.Client, function: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/functions/{function}/invocations")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["invocations"]
    return found


def ondo_events(client: httpx.Client, type_: str) -> list[dict[str, Any]]:
    response = client.get("/v1/events", params={"type": type_, "limit": 1000})
    response.raise_for_status()
    return [e["event"] for e in response.json()["events"] if e["event"]["source"] == "ondo"]


def greet_changes(client: httpx.Client) -> list[dict[str, Any]]:
    return [e for e in ondo_events(client, "ondo.rule.changed") if e["subject"] == "greet"]


def bill(client: httpx.Client, customer: str) -> None:
    event = {"specversion": "1.0", "id": customer, "source": "shop", "type": "bill.due"}
    client.post("/v1/events", json={**event, "subject": customer}).raise_for_status()


def test_three_failed_invocations_of_billing_invoke_alert_once(ondo: RunningPlatform) -> None:
    with ondo.client() as client:
        bill(client, "ann")
        bill(client, "bob")
        wait_for(lambda: len(ondo_events(client, "ondo.invocation.failed")) == 2)
        assert invocations(client, "alert") == []
        bill(client, "cid")
        alerts = wait_for(lambda: invocations(client, "alert"))
        assert alerts[0]["status"] == "succeeded", alerts[0]
        assert alerts[0]["result"]["type"] == "ondo.invocation.failed"
        assert alerts[0]["result"]["function"] == "billing"
        failed = ondo_events(client, "ondo.invocation.failed")
        assert len(failed) == 3 and {e["subject"] for e in failed} == {"billing"}
        assert all(e["data"]["error_type"] == "RuntimeError" for e in failed)
        assert all(e["ondohops"] == 1 for e in failed)  # invocations a rule started
        assert {e["data"]["trigger"] for e in failed} == {"rule:bill"}
        # One attempt each (ONDO_ACTION_MAX_ATTEMPTS=1): each billing action is dead-lettered.
        dead = wait_for(
            lambda: len(e := ondo_events(client, "ondo.action.dead_lettered")) == 3 and e
        )
        assert {e["data"]["rule"] for e in dead} == {"bill"}
        assert {e["data"]["event"]["id"] for e in dead} == {"ann", "bob", "cid"}
        source = client.get("/v1/sources/ops").json()
        assert source["state"] == "connected"
        # The six above, and the startup deploy's rules if the source ran before they were made.
        assert source["events"] == len(ondo_events(client, "ondo.*")) >= 6
        assert len(invocations(client, "alert")) == 1  # once for three failures


def test_deploys_and_rule_changes_are_events(ondo: RunningPlatform, tmp_path: Path) -> None:
    with ondo.client() as client:
        wait_for(lambda: client.get("/v1/sources/ops").json()["state"] == "connected")
    app = tmp_path / "extra"
    (app / "hello").mkdir(parents=True)
    (app / "hello" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    manifest = {
        "name": "extra",
        "functions": {"hello": {"handler": "app.handler", "code": "hello"}},
        "rules": [{"name": "greet", "when": "on greet.me do invoke hello"}],
    }
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    done = ondo.cli("deploy", str(app))
    assert done.returncode == 0, done.stderr
    assert ondo.cli("rules", "disable", "greet").returncode == 0
    assert ondo.cli("rules", "delete", "greet").returncode == 0
    with ondo.client() as client:
        deployed = wait_for(lambda: ondo_events(client, "ondo.function.deployed"))
        assert deployed[0]["subject"] == "hello"
        assert deployed[0]["data"]["version"] == 1 and deployed[0]["data"]["app"] == "extra"
        changes = wait_for(lambda: len(c := greet_changes(client)) == 3 and c)
        assert [(c["subject"], c["data"]["change"]) for c in changes] == [
            ("greet", "created"),
            ("greet", "disabled"),
            ("greet", "deleted"),
        ]
