"""kill -9 of the platform while 5,000 events are posted concurrently: every 202 is in the log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.functional.loadgen import Connection
from tests.functional.platform import RunningPlatform

TOTAL = 5000
KILL_AFTER = 2500
CONCURRENCY = 32
JSON = "application/cloudevents+json"


async def post_all(platform: RunningPlatform) -> tuple[set[str], int]:
    """Post TOTAL events over CONCURRENCY connections; SIGKILL the platform after KILL_AFTER."""
    accepted: set[str] = set()
    failures = 0
    numbers = iter(range(TOTAL))
    killed = False

    async def worker() -> None:
        nonlocal failures, killed
        connection = Connection(platform.url, platform.token)
        for n in numbers:
            event = {"specversion": "1.0", "id": f"k{n}", "source": "/load", "type": "load.t"}
            try:
                answer = await connection.post("/v1/events", json.dumps(event).encode(), JSON)
            except (OSError, asyncio.IncompleteReadError):
                failures += 1
                await connection.close()
                continue
            if answer.status == 202:
                accepted.add(f"k{n}")
            if len(accepted) >= KILL_AFTER and not killed:
                killed = True
                await asyncio.to_thread(platform.kill)
        await connection.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return accepted, failures


def stored_ids(platform: RunningPlatform) -> list[str]:
    ids: list[str] = []
    after = 0
    with platform.client() as api:
        while True:
            page = api.get("/v1/events", params={"after": after, "limit": 1000}).json()
            if not page["events"]:
                return ids
            ids += [s["event"]["id"] for s in page["events"]]
            after = page["next"]


def test_every_accepted_event_survives_kill_9(tmp_path: Path) -> None:
    platform = RunningPlatform(tmp_path / "data").start()
    try:
        accepted, failures = asyncio.run(post_all(platform))
        assert platform.proc is not None and platform.proc.returncode == -9
        assert len(accepted) >= KILL_AFTER
        assert failures > 0  # the kill happened while requests were in flight
        platform.start()
        ids = stored_ids(platform)
        assert accepted - set(ids) == set()
        assert len(ids) == len(set(ids))  # nothing stored twice
    finally:
        platform.stop()
        platform.kill()
