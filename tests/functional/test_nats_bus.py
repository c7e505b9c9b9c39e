"""`ondo up` with its event log on NATS JetStream (ONDO_BUS=nats://…, a cluster of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for
from tests.services import NATS_URL, require_nats, unique_cluster
from tests.unit.bus.nats_cleanup import delete_cluster

pytestmark = pytest.mark.nats


def write_app(root: Path) -> Path:
    rules = [{"name": "seen", "when": "on order.created do emit order.seen"}]
    root.mkdir(parents=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump({"name": "natsapp", "rules": rules}))
    return root


def send(client: httpx.Client, event_id: str) -> None:
    event = {"specversion": "1.0", "id": event_id, "type": "order.created", "source": "/shop"}
    response = client.post("/v1/events", json=event)
    assert response.status_code in (200, 202), response.text


def of_type(client: httpx.Client, type_: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/v1/events", params={"type": type_}).json()["events"]
    return found


def test_a_platform_on_nats_logs_dispatches_and_resumes_after_a_restart(tmp_path: Path) -> None:
    require_nats()
    cluster = unique_cluster()
    env = {"ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster}
    app = write_app(tmp_path / "app")
    try:
        with RunningPlatform(tmp_path / "data", apps=[app], env=env) as ondo, ondo.client() as c:
            send(c, "o1")
            send(c, "o2")
            send(c, "o1")  # a duplicate: dropped by JetStream's message-id deduplication
            wait_for(lambda: len(of_type(c, "order.seen")) == 2)
            shown = c.get("/v1/events/o1", params={"source": "/shop"}).json()
            assert shown["event"]["id"] == "o1" and shown["seq"] == 1
            assert [e["event"]["id"] for e in of_type(c, "order.created")] == ["o1", "o2"]
        with RunningPlatform(tmp_path / "data", apps=[app], env=env) as ondo, ondo.client() as c:
            send(c, "o3")
            seen = wait_for(lambda: len(found := of_type(c, "order.seen")) >= 3 and found)
            assert len(seen) == 3  # each firing emitted once across the restart
            assert c.get("/v1/events", params={"after": 0}).json()["events"][0]["seq"] == 1
    finally:
        delete_cluster(NATS_URL, cluster)
