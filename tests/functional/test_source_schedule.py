"""A `schedule` source drives a rule that invokes a function, on a real `ondo up` whose manual
clock the test moves: each tick runs the function once, `ondo sources show` counts it, and a
restart repeats no tick."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for

REPORT = """
def handler(event, context):
    return {"tick": event["data"]["scheduled_time"], "shop": event["data"]["shop"]}
"""


def write_app(root: Path) -> Path:
    (root / "report").mkdir(parents=True)
    (root / "report" / "app.py").write_text(REPORT)
    manifest = {
        "name": "reports",
        "functions": {"report": {"handler": "app.handler"}},
        "sources": {
            "every-minute": {
                "kind": "schedule",
                "rate": "rate(1 minute)",
                "type": "report.due",
                "data": {"shop": "north"},
            }
        },
        "rules": [
            {"name": "run-report", "when": "on report.due from every-minute do invoke report"}
        ],
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    return root


@pytest.fixture
def ondo(tmp_path: Path) -> Iterator[RunningPlatform]:
    app = write_app(tmp_path / "reports")
    with RunningPlatform(tmp_path / "data", apps=[app], env={"ONDO_CLOCK": "manual"}) as running:
        yield running


def source(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/v1/sources/every-minute")
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def next_tick(client: httpx.Client) -> float:
    detail = wait_for(lambda: (d := source(client)["detail"]).startswith("next tick ") and d)
    return datetime.fromisoformat(
        detail.removeprefix("next tick ").replace("Z", "+00:00")
    ).timestamp()


def fire(client: httpx.Client) -> float:
    """Move the clock one second past the next tick; that tick."""
    tick = next_tick(client)
    now = client.get("/v1/clock").json()["now"]
    client.post("/v1/clock/advance", json={"seconds": tick + 1 - now}).raise_for_status()
    wait_for(lambda: next_tick(client) > tick)
    return tick


def ticks_run(client: httpx.Client) -> list[str]:
    response = client.get("/v1/functions/report/invocations")
    response.raise_for_status()
    return sorted(
        r["result"]["tick"] for r in response.json()["invocations"] if r.get("result") is not None
    )


def test_each_tick_invokes_the_function_once_and_a_restart_repeats_none(
    ondo: RunningPlatform,
) -> None:
    with ondo.client() as client:
        fire(client)
        first = wait_for(lambda: ticks_run(client))
        fire(client)
        both = wait_for(lambda: (found := ticks_run(client)) and len(found) == 2 and found)
        assert both[0] == first[0] and both[0] < both[1]
        assert both[0].endswith(":00Z") and both[1].endswith(":00Z")
        shown = source(client)
        assert shown["state"] == "connected" and shown["events"] == 2
        assert shown["settings"]["every_s"] == 60
    ondo.stop()
    ondo.start()
    with ondo.client() as client:
        fire(client)
        found = wait_for(lambda: (found := ticks_run(client)) and len(found) == 3 and found)
        assert found[:2] == both and found[2] > both[1]
        invocations = client.get("/v1/functions/report/invocations").json()["invocations"]
        assert len(invocations) == 3  # no tick ran twice
        assert {r["result"]["shop"] for r in invocations} == {"north"}


def test_a_cron_that_never_fires_is_refused_at_deploy(
    ondo: RunningPlatform, tmp_path: Path
) -> None:
    app = tmp_path / "leap"
    app.mkdir()
    (app / "ondo.yaml").write_text(
        "name: leap\nsources:\n  leap:\n    kind: schedule\n    cron: '0 0 30 2 *'\n"
    )
    done = ondo.cli("deploy", str(app))
    assert done.returncode != 0
    assert "ondo.yaml:5" in done.stderr and "never fires" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    with ondo.client() as client:
        names = [s["name"] for s in client.get("/v1/sources").json()["sources"]]
    assert names == ["every-minute"]
