"""Rule state survives SIGKILL of the platform (wall clock): a `for` timer and a count window."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.functional.platform import RunningPlatform
from tests.functional.test_rules import events_of_type, send, wait_for

HOT_3S = "on sensor.temperature where celsius > 30 for 3s do emit alert.heat"
THREE_CLAIMS = "on insurance.claim 3 times within 1h per subject do emit claim.suspicious"


def decisions(client: httpx.Client, event_id: str) -> list[str]:
    trace = client.get(f"/v1/trace/{event_id}")
    if trace.status_code == 404:
        return []
    return [f"{d['stage']}:{d['outcome']}" for d in trace.json()["decisions"]]


def test_a_for_timer_fires_exactly_once_across_a_sigkill(tmp_path: Path) -> None:
    ondo = RunningPlatform(tmp_path / "data").start()
    try:
        assert ondo.cli("rules", "add", HOT_3S, "--name", "hot").returncode == 0
        with ondo.client() as client:
            send(client, "t1", "sensor.temperature", data={"celsius": 40})
            wait_for(lambda: decisions(client, "t1") == ["event:timer started"] or None)
        time.sleep(1.0)  # kill in the middle of the 3 s
        ondo.kill()
        ondo.start()
        with ondo.client() as client:
            fired = wait_for(lambda: len(decisions(client, "t1")) == 2 or None)
            assert fired
            assert decisions(client, "t1") == ["event:timer started", "timer:fired"]
            alerts = wait_for(lambda: events_of_type(client, "alert.heat"))
            state = client.get("/v1/rules/hot").json()["state"]
            assert state["pending_timers"] == []
        # a second restart replays nothing: still one alert
        ondo.kill()
        ondo.start()
        with ondo.client() as client:
            assert decisions(client, "t1") == ["event:timer started", "timer:fired"]
            assert len(events_of_type(client, "alert.heat")) == len(alerts) == 1
    finally:
        ondo.kill()


def test_counts_survive_a_sigkill(tmp_path: Path) -> None:
    ondo = RunningPlatform(tmp_path / "data").start()
    try:
        assert ondo.cli("rules", "add", THREE_CLAIMS, "--name", "claims").returncode == 0
        with ondo.client() as client:
            for i in range(2):
                send(client, f"c{i}", "insurance.claim", subject="alice")
            wait_for(lambda: decisions(client, "c1") == ["event:counted"] or None)
        ondo.kill()
        ondo.start()
        with ondo.client() as client:
            assert client.get("/v1/rules/claims").json()["state"]["counts"] == {"alice": 2}
            send(client, "c2", "insurance.claim", subject="alice")
            wait_for(lambda: decisions(client, "c2") == ["event:fired"] or None)
            emitted = wait_for(lambda: events_of_type(client, "claim.suspicious"))
            assert [e["event"]["subject"] for e in emitted] == ["alice"]
            assert decisions(client, "c0") == decisions(client, "c1") == ["event:counted"]
    finally:
        ondo.kill()
