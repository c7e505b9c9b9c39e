"""Actions end to end on a running platform: retries with backoff, the dead-letter queue,
`ondo dlq retry` once the function is fixed, and destination events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for

FLAKY = """
import os


def handler(event, context):
    if os.environ.get("BROKEN") == "1":
        raise RuntimeError("broken on purpose (BROKEN=1)")
    return {"ok": True, "event": event.get("id")}
"""


def write_flaky_app(root: Path, broken: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "flaky",
        "functions": {
            "flaky": {
                "code": "./flaky",
                "handler": "app.handler",
                "timeout": 10,
                "environment": {"BROKEN": "1" if broken else "0"},
            }
        },
        "rules": [{"name": "run-flaky", "when": "on test.go do invoke flaky"}],
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    (root / "flaky").mkdir(exist_ok=True)
    (root / "flaky" / "app.py").write_text(FLAKY)
    return root


def event(event_id: str, type_: str = "test.go") -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "tests/actions", "type": type_}


def post_events(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    response = client.post("/v1/events", json=events if len(events) > 1 else events[0])
    assert response.status_code in (200, 202), response.text


def dead_letters(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/dlq")
    response.raise_for_status()
    jobs: list[dict[str, Any]] = response.json()["dead_letters"]
    return jobs


def job_status(client: httpx.Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/dlq/{job_id}")
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def advance(client: httpx.Client, seconds: float) -> None:
    client.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[RunningPlatform, Path]]:
    app = write_flaky_app(tmp_path / "flaky", broken=True)
    env = {"ONDO_CLOCK": "manual", "ONDO_ACTION_BACKOFF": "1", "ONDO_ACTION_MAX_ATTEMPTS": "3"}
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as running:
        yield running, app


def test_a_failing_action_is_retried_dead_lettered_and_retried_from_the_dlq(
    flaky: tuple[RunningPlatform, Path],
) -> None:
    platform, app = flaky
    with platform.client() as client:
        post_events(client, [event("e1")])
        # Attempt 1 runs at once; the 2nd waits 0.5-1 s of platform time, the 3rd 1-2 s.
        for failed_so_far, wait in ((1, 1.0), (2, 2.0)):
            wait_for(lambda n=failed_so_far: _retry_pending_after(client, n))  # type: ignore[misc]
            advance(client, wait * 0.49)
            assert len(_invocations(client)) == failed_so_far  # not due before half the delay
            advance(client, wait * 0.52)
        dead = wait_for(lambda: dead_letters(client))
        assert len(dead) == 1
        job = dead[0]
        assert job["rule"] == "run-flaky" and job["kind"] == "invoke" and job["attempts"] == 3
        assert "broken on purpose" in json.dumps(job["last_error"])
        failed = _invocations(client)
        assert len(failed) == 3 and {r["status"] for r in failed} == {"failed"}
        assert sorted(r["id"] for r in failed) == sorted(job["invocation_ids"])
        assert {r["trigger"] for r in failed} == {"rule:run-flaky"}

        failed_events = wait_for(lambda: _events(client, "ondo.action.failed"))
        assert len(failed_events) == 1
        notice = failed_events[0]["event"]
        assert notice["source"] == "ondo/rules/run-flaky" and notice["ondohops"] == 1
        assert notice["data"]["event"] == {"source": "tests/actions", "id": "e1"}
        assert (
            notice["data"]["attempts"] == 3
            and notice["data"]["invocation_id"] in (job["invocation_ids"])
        )

        listed = platform.cli("dlq", "list")
        assert listed.returncode == 0, listed.stderr
        assert f"{job['id']} " in listed.stdout and "run-flaky" in listed.stdout

        write_flaky_app(app, broken=False)
        deployed = platform.cli("deploy", str(app))
        assert deployed.returncode == 0, deployed.stderr
        retried = platform.cli("dlq", "retry", str(job["id"]))
        assert retried.returncode == 0, retried.stderr
        assert "queued again: 1 action" in retried.stdout
        done = wait_for(lambda: job_status(client, job["id"])["status"] == "succeeded")
        assert done
        final = job_status(client, job["id"])
        assert final["attempts"] == 1 and len(final["invocation_ids"]) == 4
        assert dead_letters(client) == []
        records = _invocations(client)
        assert sorted(r["status"] for r in records) == ["failed"] * 3 + ["succeeded"]
        again = client.post("/v1/dlq/retry", json={"ids": [job["id"]]})
        assert again.json() == {"retried": [], "skipped_not_dead": [job["id"]]}
        refused = client.post(f"/v1/dlq/{job['id']}/retry")
        assert refused.status_code == 409 and "succeeded, not dead" in refused.text
        succeeded = wait_for(lambda: _events(client, "ondo.action.succeeded"))
        assert succeeded[0]["event"]["data"]["result"] == {"result": {"ok": True, "event": "e1"}}


def _events(client: httpx.Client, type_: str) -> list[dict[str, Any]]:
    response = client.get("/v1/events", params={"type": type_})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def _invocations(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/functions/flaky/invocations", params={"limit": 100})
    response.raise_for_status()
    records: list[dict[str, Any]] = response.json()["invocations"]
    return records


def _retry_pending_after(client: httpx.Client, failures: int) -> bool:
    """`failures` attempts have failed and the job waits for its next one."""
    advance(client, 0)  # lets the dispatcher hand new events to the rules
    jobs = client.get("/v1/actions").json()["jobs"]
    return bool(
        jobs["pending"] == 1 and jobs["running"] == 0 and len(_invocations(client)) == failures
    )


def test_dlq_commands_explain_unknown_ids(flaky: tuple[RunningPlatform, Path]) -> None:
    platform, _app = flaky
    shown = platform.cli("dlq", "show", "999")
    assert shown.returncode == 1 and "action job 999 does not exist" in shown.stderr
    retried = platform.cli("dlq", "retry", "999")
    assert retried.returncode == 1 and "ondo dlq list" in retried.stderr
    bad = platform.cli("dlq", "delete", "abc")
    assert bad.returncode == 1 and "is a number" in bad.stderr
    neither = platform.cli("dlq", "retry")
    assert neither.returncode == 1 and "--all" in neither.stderr
    everything = platform.cli("dlq", "retry", "--all")
    assert everything.returncode == 0 and "queued again: 0 action" in everything.stdout


CHAIN = """
def handler(event, context):
    return {"got": event["data"], "hops": event.get("ondohops")}
"""


def test_emit_chains_rules_one_hop_further(tmp_path: Path) -> None:
    app = tmp_path / "chain"
    (app / "done").mkdir(parents=True)
    (app / "done" / "app.py").write_text(CHAIN)
    manifest = {
        "name": "chain",
        "functions": {"done": {"code": "./done", "handler": "app.handler"}},
        "rules": [
            {"name": "first", "when": 'on chain.start do emit chain.next with {"step": 2}'},
            {"name": "second", "when": "on chain.next do invoke done"},
        ],
    }
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    with RunningPlatform(tmp_path / "data", apps=[app]) as platform, platform.client() as client:
        start = {**event("c1", "chain.start"), "subject": "job/7"}
        post_events(client, [start])
        post_events(client, [start])  # the same event again: deduplicated, nothing doubles
        emitted = wait_for(lambda: _events(client, "chain.next"))
        assert len(emitted) == 1
        next_event = emitted[0]["event"]
        assert next_event["source"] == "ondo/rules/first" and next_event["subject"] == "job/7"
        assert next_event["data"] == {"step": 2} and next_event["ondohops"] == 1
        done = wait_for(lambda: _events(client, "ondo.action.succeeded"))
        assert done[0]["event"]["data"]["rule"] == "second"
        result = done[0]["event"]["data"]["result"]["result"]
        assert result == {"got": {"step": 2}, "hops": 1}
        time.sleep(0.3)  # give a wrongly doubled emit or invocation the time to show up
        assert len(_events(client, "chain.next")) == 1
        records = client.get("/v1/functions/done/invocations").json()["invocations"]
        assert [r["status"] for r in records] == ["succeeded"]
