"""Two `ondo up` processes on one PostgreSQL store and NATS bus: a token revoked, or a policy
granted, through one node is refused, or honoured, by the other on its next call (each node
caches authenticated tokens; the store's change feed, topic `principals`, empties the other's)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.functional.platform import RunningPlatform, wait_for
from tests.services import (
    NATS_URL,
    POSTGRES_URL,
    drop_cluster,
    require_nats,
    require_postgres,
    unique_cluster,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.nats]


def _as(node: RunningPlatform, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=node.url, headers=headers, timeout=30)


def test_a_revocation_and_a_policy_reach_the_other_node(tmp_path: Path) -> None:
    require_postgres()
    require_nats()
    cluster = unique_cluster("ids")
    env = {"ONDO_STORE": POSTGRES_URL, "ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster}
    a = RunningPlatform(tmp_path / "a", env=env)
    b = RunningPlatform(tmp_path / "b", env=env)
    try:
        a.start()
        b.start()
        with a.client() as admin_a:
            added = admin_a.post("/v1/users", json={"name": "olga", "role": "operator"})
            assert added.status_code == 201, added.text
            token, token_id = added.json()["token"], added.json()["id"]
            with _as(b, token) as olga_on_b:
                assert olga_on_b.get("/v1/whoami").status_code == 200  # cached on B now
                rule = {"name": "olga-rule", "text": "on a.b do emit c.d"}
                assert olga_on_b.post("/v1/rules", json=rule).status_code == 403
                policy = {"principal": "olga", "permission": "rules", "resource": "rule:olga-*"}
                assert admin_a.post("/v1/policies", json=policy).status_code == 201
                wait_for(lambda: olga_on_b.post("/v1/rules", json=rule).status_code == 201)
                assert admin_a.delete(f"/v1/tokens/{token_id}").status_code == 200
                wait_for(lambda: olga_on_b.get("/v1/whoami").status_code == 401)
    finally:
        for node in (a, b):
            node.stop()
            node.kill()
        drop_cluster(cluster)
