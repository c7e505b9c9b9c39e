"""kill -9 of a process that appends to the SQLite bus loses no acknowledged event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from ondo.backends.bus import open_bus

# Appends from 8 concurrent tasks forever; prints "seq id" after each append has returned.
CHILD = """
import asyncio, sys
from ondo.backends.bus import open_bus
from ondo.events import CloudEvent

async def producer(bus, worker):
    n = 0
    while True:
        n += 1
        event = CloudEvent(id=f"w{worker}-{n}", source=f"/worker/{worker}", type="t", data={"n": n})
        (result,) = await bus.append([event])
        sys.stdout.write(f"{result.seq} {event.source} {event.id}\\n")
        sys.stdout.flush()

async def main():
    bus = open_bus(sys.argv[1])
    await asyncio.gather(*(producer(bus, w) for w in range(8)))

asyncio.run(main())
"""


def test_every_acknowledged_append_survives_sigkill(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/bus.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acknowledged: list[tuple[int, str, str]] = []
    assert child.stdout is not None
    for line in child.stdout:
        seq, source, event_id = line.split()
        acknowledged.append((int(seq), source, event_id))
        if len(acknowledged) >= 2000:
            break
    os.kill(child.pid, signal.SIGKILL)
    rest, errors = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, errors
    # Acknowledged before the kill, still in the pipe. The kill may cut the last line short
    # (print writes the text and the newline separately): only whole lines count as said.
    for line in rest.split("\n")[:-1]:
        seq, source, event_id = line.split()
        acknowledged.append((int(seq), source, event_id))

    async def stored() -> dict[tuple[str, str], int]:
        bus = open_bus(url)
        try:
            found = {}
            after = 0
            while batch := await bus.read(after, limit=1000):
                found.update({(s.event.source, s.event.id): s.seq for s in batch})
                after = batch[-1].seq
            return found
        finally:
            await bus.close()

    in_log = asyncio.run(stored())
    missing = [a for a in acknowledged if in_log.get((a[1], a[2])) != a[0]]
    assert len(acknowledged) >= 2000
    assert missing == []
