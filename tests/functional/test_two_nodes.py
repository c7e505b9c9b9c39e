"""Two `ondo up` processes, each with its own data dir, on one PostgreSQL store and one NATS bus
(one cluster): what is deployed through one runs on the other (its code comes through the
store), rules added through either are matched by both, and each event's action runs once in
all.

Each process has its own admin token file; the token table is shared, so both are valid on both.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform, wait_for
from tests.functional.test_distributed_kill import queue_idle
from tests.services import (
    NATS_URL,
    POSTGRES_URL,
    drop_cluster,
    require_nats,
    require_postgres,
    unique_cluster,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.nats]

ANSWER = """
def handler(event, context):
    return {"code": "deployed through A", "id": event.get("id")}
"""
EVENTS = 50


def _event(event_id: str, kind: str) -> dict[str, str]:
    return {"specversion": "1.0", "id": event_id, "source": "/two", "type": kind}


def _answered(api: httpx.Client) -> Counter[str]:
    """Event id -> how many distinct succeeded invocations of `f` answered it."""
    seen: dict[str, str] = {}  # invocation id -> event id
    after = 0.0
    while True:
        page = api.get("/v1/functions/f/logs", params={"after": after, "limit": 1000})
        page.raise_for_status()
        records: list[dict[str, Any]] = page.json()["invocations"]
        for record in records:
            if record["status"] == "succeeded" and record["result"]["id"] is not None:
                seen[record["id"]] = record["result"]["id"]
        if len(records) < 1000:
            return Counter(seen.values())
        after = max(r["finished_at"] for r in records) - 0.001  # ids remove what is read twice


def _fired(api: httpx.Client, event_id: str, rule: str) -> bool:
    trace = api.get(f"/v1/trace/{event_id}")
    if trace.status_code != 200:
        return False
    return any(
        d["rule"] == rule and d["outcome"] == "fired" for d in trace.json().get("decisions", [])
    )


def test_two_processes_share_deploys_code_rules_and_work(tmp_path: Path) -> None:
    require_postgres()
    require_nats()
    cluster = unique_cluster("two")
    env = {"ONDO_STORE": POSTGRES_URL, "ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster}
    app = write_app(tmp_path / "twoapp", {"f": {"concurrency": 8}}, {"f/app.py": ANSWER})
    (app / "ondo.yaml").write_text(
        (app / "ondo.yaml").read_text()
        + "rules:\n  - name: on-x\n    when: 'on x.happened do invoke f'\n"
    )
    a = RunningPlatform(tmp_path / "a", env=env)
    b = RunningPlatform(tmp_path / "b", env=env)
    try:
        a.start()
        b.start()
        assert a.token != b.token
        with a.client() as api_a, b.client() as api_b:
            # both tokens are valid on both nodes: the token table is shared
            assert httpx.get(f"{a.url}/v1/rules", headers=_bearer(b.token)).status_code == 200
            assert httpx.get(f"{b.url}/v1/rules", headers=_bearer(a.token)).status_code == 200

            deployed = a.cli("deploy", str(app))
            assert deployed.returncode == 0, deployed.stderr
            since = time.monotonic()
            while api_b.get("/v1/functions/f").status_code != 200:
                assert time.monotonic() - since < 30, "node B never saw the deploy"
                time.sleep(0.005)
            print(f"\nnode B lists the function {time.monotonic() - since:.3f} s after the deploy")

            # B runs the code deployed through A (fetched from the store)
            answer = api_b.post("/v1/functions/f/invoke", json={"id": "direct"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"code": "deployed through A", "id": "direct"}
            assert [p.name for p in (b.data_dir / "code").iterdir() if not p.name.startswith(".")]

            # a rule added through B is matched by A (post again until A has heard of it)
            rule = {"name": "on-y", "text": "on y.happened do invoke f"}
            assert api_b.post("/v1/rules", json=rule).status_code == 201
            for attempt in range(20):
                event_id = f"y-{attempt}"
                assert api_a.post("/v1/events", json=_event(event_id, "y.happened")).is_success
                try:
                    wait_for(lambda: _fired(api_a, event_id, "on-y"), timeout=5)  # noqa: B023
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError("node A never matched the rule added through node B")
            print(f"the rule added through B fired on an event posted to A: attempt {attempt}")

            # 50 events posted to A: each action runs once across both nodes
            wanted = {f"x-{n}" for n in range(EVENTS)}
            for event_id in sorted(wanted):
                assert api_a.post("/v1/events", json=_event(event_id, "x.happened")).is_success
            wait_for(lambda: wanted <= set(_answered(api_b)), timeout=120)
            wait_for(lambda: queue_idle(api_a) and queue_idle(api_b), timeout=120)
            counts = _answered(api_a)
        assert {k: n for k, n in counts.items() if k in wanted and n != 1} == {}
        assert wanted <= set(counts)
    finally:
        for node in (a, b):
            node.stop()
            node.kill()
        drop_cluster(cluster)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
