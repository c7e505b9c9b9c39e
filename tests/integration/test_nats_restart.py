"""NATS killed and restarted while events are appended or posted: errors, never a false success.

Each test runs its own nats-server on a free port (never the shared one on 4222), kills it with
SIGKILL while a producer appends, and starts it again on the same store directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ondo.backends.bus import Bus, open_bus
from ondo.errors import BusError
from ondo.events import CloudEvent
from tests.functional.platform import RunningPlatform

pytestmark = [pytest.mark.nats, pytest.mark.slow]

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class OwnNats:
    port: int
    store: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd"]
        self.process = subprocess.Popen(
            [*command, str(self.store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnNats]:
    if not os.access(NATS_SERVER, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"nats-server is not installed ({NATS_SERVER}) and CI is set")
        pytest.skip(f"nats-server is not installed ({NATS_SERVER}; CI unset, so skipped)")
    server = OwnNats(_free_port(), tmp_path / "jetstream")
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@dataclass
class Producer:
    bus: Bus
    acked: list[str] = field(default_factory=list)
    failures: list[BusError] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        while True:  # batches of 5: a kill may cut a batch's pipelined acknowledgements
            batch = [
                CloudEvent(id=f"e{n + i}", source="/restart", type="t", data={"n": n + i})
                for i in range(5)
            ]
            n += len(batch)
            try:
                await self.bus.append(batch)
            except BusError as exc:  # anything else fails the test
                self.failures.append(exc)
                await asyncio.sleep(0.05)
            else:
                self.acked.extend(event.id for event in batch)
            self.changed.set()

    async def until(self, condition: object) -> None:
        while not condition():  # type: ignore[operator]
            self.changed.clear()
            await self.changed.wait()


async def _until_up(bus: Bus) -> None:
    while True:
        try:
            await bus.last_seq()
            return
        except BusError:
            await asyncio.sleep(0.1)


def test_appends_during_a_restart_raise_and_every_acknowledged_one_is_kept(
    own_nats: OwnNats,
) -> None:
    async def body() -> None:
        bus = open_bus(f"{own_nats.url}?timeout=2s", cluster="restart")
        await _until_up(bus)
        producer = Producer(bus)
        task = asyncio.create_task(producer.run())
        try:
            await producer.until(lambda: len(producer.acked) >= 250)
            own_nats.kill()
            await producer.until(lambda: len(producer.failures) >= 3)
            acked_before_restart = len(producer.acked)
            own_nats.start()
            await producer.until(lambda: len(producer.acked) >= acked_before_restart + 250)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        stored: list[str] = []
        after = 0
        while batch := await bus.read(after, 500):
            stored.extend(s.event.id for s in batch)
            after = batch[-1].seq
        missing = set(producer.acked) - set(stored)
        assert not missing, f"acknowledged but lost across the restart: {sorted(missing)}"
        assert all("NATS at" in str(failure) for failure in producer.failures)
        await bus.close()

    asyncio.run(body())


def test_posts_during_a_restart_get_errors_never_a_false_202(
    own_nats: OwnNats, tmp_path: Path
) -> None:
    env = {"ONDO_BUS": f"{own_nats.url}?timeout=2s", "ONDO_CLUSTER": "posts"}
    accepted: list[str] = []
    refused: list[int] = []

    def post(client: httpx.Client, n: int) -> None:
        event = {"specversion": "1.0", "id": f"p{n}", "type": "t.posted", "source": "/posts"}
        response = client.post("/v1/events", json=event)
        if response.status_code in (200, 202):
            accepted.append(f"p{n}")
        else:
            assert response.status_code == 503, response.text
            assert "NATS at" in response.text
            refused.append(n)

    with RunningPlatform(tmp_path / "data", env=env) as ondo, ondo.client() as client:
        posted = iter(range(1_000_000))
        while len(accepted) < 100:
            post(client, next(posted))
        own_nats.kill()
        while len(refused) < 3:
            post(client, next(posted))
        own_nats.start()
        before = len(accepted)
        while len(accepted) < before + 100:
            post(client, next(posted))
        stored: set[str] = set()
        after = 0
        while page := client.get("/v1/events", params={"after": after, "limit": 1000}).json():
            if not page["events"]:
                break
            stored.update(e["event"]["id"] for e in page["events"])
            after = page["next"]
    missing = set(accepted) - stored
    assert not missing, f"answered 202 but lost across the restart: {sorted(missing)}"
