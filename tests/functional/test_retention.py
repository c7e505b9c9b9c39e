"""Retention on a running platform: events, jobs, decisions and invocation records past their
retention disappear, and `ondo events show`, `ondo trace` and the API say retention deleted
them (410) instead of "not found"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.platform import RunningPlatform, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DAY = 86400.0


@pytest.fixture
def ondo(tmp_path: Path) -> Iterator[RunningPlatform]:
    """The hello example (greeting.requested invokes hello) on a manual clock."""
    env = {"ONDO_CLOCK": "manual"}
    with RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "hello"], env=env) as running:
        yield running


def advance(client: httpx.Client, seconds: float) -> None:
    client.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


def invoked(client: httpx.Client, event_id: str) -> dict[str, Any] | None:
    """The job of the event's firing, once its invocation succeeded."""
    advance(client, 0)
    decisions = client.get(f"/v1/trace/{event_id}").json()["decisions"]
    jobs = [job for d in decisions for job in d["jobs"]]
    return jobs[0] if jobs and jobs[0]["status"] == "succeeded" else None


def test_what_retention_deleted_is_reported_as_deleted(ondo: RunningPlatform) -> None:
    with ondo.client() as client:
        posted = client.post(
            "/v1/events", json={"specversion": "1.0", "type": "greeting.requested", "source": "t"}
        )
        generated = posted.json()["ids"][0]  # a UUIDv7: its id tells when it was made
        custom = {"specversion": "1.0", "type": "greeting.requested", "source": "t", "id": "g-1"}
        assert client.post("/v1/events", json=custom).status_code == 202
        job = wait_for(lambda: invoked(client, generated))
        wait_for(lambda: invoked(client, "g-1"))
        by_rule = job["invocation_ids"][0]  # named after its job: no time in it
        called = client.post("/v1/functions/hello/invoke", json={"name": "Ada"})
        invocation_id = called.headers["x-ondo-invocation-id"]

        advance(client, 7 * DAY + 60)  # past the events' and the finished jobs' retention
        gone = wait_for(lambda: _gone(client.get(f"/v1/events/{generated}")))
        assert f"event {generated!r} is older than the retention of events (7 days)" in gone
        shown = ondo.cli("events", "show", "g-1")  # its time comes from its decision
        assert shown.returncode != 0
        assert "older than the retention of events (7 days) and was deleted" in shown.stderr
        trace = client.get(f"/v1/trace/{generated}").json()
        assert trace["events"] == [] and trace["decisions"]
        assert "older than the retention of events (7 days)" in trace["lines"][0]
        assert "its job is older than the retention of finished action jobs (7 days)" in "\n".join(
            trace["lines"]
        )
        assert client.get(f"/v1/invocations/{invocation_id}").status_code == 200  # 30 days
        never = client.get("/v1/events/never-sent")
        assert never.status_code == 404
        assert "never sent, or older than the retention of events (7 days)" in never.text

        advance(client, 23 * DAY)  # past the decisions' and the invocation records' 30 days
        gone = wait_for(lambda: _gone(client.get(f"/v1/trace/{generated}")))
        assert "older than the retention of rule decisions (30 days) and was deleted" in gone
        traced = ondo.cli("trace", generated)
        assert traced.returncode != 0 and "retention of rule decisions (30 days)" in traced.stderr
        gone = _gone(client.get(f"/v1/invocations/{invocation_id}"))
        assert gone and "older than the retention of invocation records (30 days)" in gone
        missing = client.get(f"/v1/invocations/{by_rule}")
        assert missing.status_code == 404 and "it may be older than the retention" in missing.text
        metrics = client.get("/metrics").text
        assert 'ondo_retention_pruned_rows_total{kind="events"}' in metrics
        # The audit log is never pruned: its first entry (the deploy of hello at start-up,
        # 30 days ago on this clock) is still there, and the chain is whole.
        first = client.get("/v1/audit", params={"after": 0, "limit": 1}).json()["entries"]
        assert first[0]["seq"] == 1 and first[0]["action"] == "ondo up --app"
        assert first[0]["resource"] == "app:hello" and first[0]["detail"]["changes"]
        assert client.get("/v1/audit/verify").json()["ok"]


def _gone(response: httpx.Response) -> str | None:
    """The error message of a 410 answer (None for any other)."""
    if response.status_code != 410:
        return None
    message: str = response.json()["error"]["message"]
    return message
