"""kill -9 of the platform while actions run: every acknowledged event's action completes
exactly once after the restart (one succeeded invocation per idempotency key, none missing)."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.functional.platform import RunningPlatform
from tests.functional.test_actions import wait_for

EVENTS = 300
COUNT = """
import time


def handler(event, context):
    time.sleep(0.05)
    return {"seen": event["id"]}
"""


def write_count_app(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "counting",
        "functions": {"count": {"code": "./count", "handler": "app.handler", "concurrency": 4}},
        "rules": [{"name": "count-all", "when": "on test.many do invoke count"}],
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    (root / "count").mkdir(exist_ok=True)
    (root / "count" / "app.py").write_text(COUNT)
    return root


def jobs(client: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = client.get("/v1/actions").json()["jobs"]
    return counts


def invocations(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/functions/count/invocations", params={"limit": 1000})
    response.raise_for_status()
    records: list[dict[str, Any]] = response.json()["invocations"]
    return records


def test_no_action_is_lost_or_doubled_across_kill_9(tmp_path: Path) -> None:
    app = write_count_app(tmp_path / "counting")
    platform = RunningPlatform(tmp_path / "data", apps=[app])
    with platform:
        with platform.client() as client:
            for start in range(0, EVENTS, 50):
                batch = [
                    {
                        "specversion": "1.0",
                        "id": f"e{i}",
                        "source": "tests/crash",
                        "type": "test.many",
                    }
                    for i in range(start, start + 50)
                ]
                response = client.post("/v1/events", json=batch)
                assert response.status_code in (200, 202), response.text
            wait_for(lambda: jobs(client)["succeeded"] >= 20)
            # 300 jobs at 4 x 50 ms take >= 3.75 s: the kill lands with most still to do.
            assert jobs(client)["succeeded"] < EVENTS - 100
        before = time.monotonic()
        platform.kill()
        assert time.monotonic() - before < 10
        platform.start()
        with platform.client() as client:
            wait_for(lambda: jobs(client)["succeeded"] == EVENTS, timeout=120)
            counts = jobs(client)
            assert counts["pending"] == counts["running"] == counts["dead"] == 0
            records = invocations(client)
    assert (
        "actions cut off by the last stop" in platform.log()
    )  # jobs cut off by the kill were picked up again
    succeeded = collections.Counter(
        r["id"].rsplit("-", 1)[0] for r in records if r["status"] == "succeeded"
    )
    assert len(succeeded) == EVENTS  # every event's action ran…
    assert set(succeeded.values()) == {1}  # …and exactly once
    assert all(r["trigger"] == "rule:count-all" for r in records)
