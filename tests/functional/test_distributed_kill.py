"""kill -9 of `ondo up` on PostgreSQL + NATS while 5,000 events are posted, with a rule consuming
them: after a restart every event answered 202 is in the log (once), and the rule's effect — an
invocation of `tally` — happened once for each of them.

The embedded versions are test_events_kill.py (the log) and test_dispatch_kill.py (the effects);
this one reads everything through the API, so it sees what the distributed engines hold.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform, wait_for
from tests.functional.test_dispatch_kill import TALLY
from tests.functional.test_events_kill import KILL_AFTER, post_all, stored_ids
from tests.services import (
    NATS_URL,
    POSTGRES_URL,
    drop_cluster,
    require_nats,
    require_postgres,
    unique_cluster,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.nats]


def tallied(api: httpx.Client) -> Counter[str]:
    """Event id -> how many distinct succeeded invocations of `tally` ran for it."""
    seen: dict[str, str] = {}  # invocation id -> event id
    after = 0.0
    while True:
        page = api.get("/v1/functions/tally/logs", params={"after": after, "limit": 1000})
        page.raise_for_status()
        records: list[dict[str, Any]] = page.json()["invocations"]
        for record in records:
            if record["status"] == "succeeded":
                seen[record["id"]] = record["result"]
        if len(records) < 1000:
            return Counter(seen.values())
        # records finishing at the same instant may straddle the page: step back a little and
        # let the invocation ids remove what is read twice
        after = max(r["finished_at"] for r in records) - 0.001


def queue_idle(api: httpx.Client) -> bool:
    jobs = api.get("/v1/actions").json()["jobs"]
    return jobs.get("pending", 0) == 0 and jobs.get("running", 0) == 0


def test_every_accepted_event_is_logged_and_acted_on_once_across_kill_9(tmp_path: Path) -> None:
    require_postgres()
    require_nats()
    cluster = unique_cluster("kill")
    env = {"ONDO_STORE": POSTGRES_URL, "ONDO_BUS": NATS_URL, "ONDO_CLUSTER": cluster}
    app = write_app(tmp_path / "tallyapp", {"tally": {"concurrency": 8}}, {"tally/app.py": TALLY})
    (app / "ondo.yaml").write_text(
        (app / "ondo.yaml").read_text()
        + "rules:\n  - name: count-load\n    when: 'on load.t do invoke tally'\n"
    )
    platform = RunningPlatform(tmp_path / "data", apps=[app], env=env)
    try:
        platform.start()
        accepted, failures = asyncio.run(post_all(platform))
        assert platform.proc is not None and platform.proc.returncode == -9
        assert len(accepted) >= KILL_AFTER
        assert failures > 0  # the kill happened while requests were in flight
        platform.start()
        ids = stored_ids(platform)
        assert accepted - set(ids) == set(), "events answered 202 are missing from the log"
        assert len(ids) == len(set(ids)), "an event is in the log twice"
        with platform.client() as api:
            wait_for(lambda: accepted <= set(tallied(api)), timeout=300)
            # The dispatcher reads the log in order: once an event posted now has had its
            # effect, every event before it has been decided; then the queue drains.
            sentinel = {"specversion": "1.0", "id": "sentinel", "source": "/t", "type": "load.t"}
            assert api.post("/v1/events", json=sentinel).status_code == 202
            wait_for(lambda: "sentinel" in tallied(api), timeout=120)
            wait_for(lambda: queue_idle(api), timeout=120)
            counts = tallied(api)
        assert {k: n for k, n in counts.items() if n > 1} == {}, "an effect happened twice"
        assert accepted <= set(counts)
    finally:
        platform.stop()
        platform.kill()
        drop_cluster(cluster)
