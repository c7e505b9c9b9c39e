"""Where an MQTT message's CPU goes on the embedded path: µs of CPU per event by stage, in one
process, measured with time.process_time (all threads), so little affected by other load.

Run:  .venv/bin/python bench/sources_mqtt_stages.py [--batch 1000] [--rounds 20]

Stages, each on batches of --batch messages (the source's batch under load), median of --rounds:

- parse: PUBLISH frames read from a socket and split into messages (`mqtt_wire.Connection`).
- make: messages into CloudEvents (`Mapper.event`: payload JSON parsed and checked, id, JSON form).
- append: `SqliteBus.append` of a batch, synchronous=FULL (the writer thread and its fsync).
- read back: `SqliteBus.read` of a batch, as the rules dispatcher reads every event.

To compare two versions, run it with PYTHONPATH pointing at the other version's src first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "src"))  # after PYTHONPATH, so that another version can be measured

import ondo  # noqa: E402
from ondo.backends.bus.sqlite import SqliteBus  # noqa: E402
from ondo.events import CloudEvent  # noqa: E402
from ondo.sources import mqtt_wire  # noqa: E402
from ondo.sources.mqtt import Mapper  # noqa: E402

try:
    from ondo.ids import uuid7_many
except ImportError:
    uuid7_many = None  # type: ignore[assignment]

TOPIC = "bench/x/{subject}/bp"


def frames(count: int) -> bytes:
    """`count` QoS 1 PUBLISH frames as Mosquitto sends them, JSON readings as in the bench."""
    out = bytearray()
    topic = b"bench/x/p1/bp"
    for n in range(count):
        payload = json.dumps({"n": n, "systolic": 100 + n % 60, "diastolic": 60 + n % 40})
        body = len(topic).to_bytes(2, "big") + topic + (n % 65535 + 1).to_bytes(2, "big")
        body += b"\x00" + payload.encode()
        out += b"\x32" + mqtt_wire._varint(len(body)) + body
    return bytes(out)


async def cpu_per_event(rounds: int, batch: int, step: Callable[[], Awaitable[Any]]) -> float:
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        await step()
        spent.append(time.process_time() - started)
    return round(statistics.median(spent) * 1e6 / batch, 1)


async def measure(batch: int, rounds: int) -> dict[str, float]:
    data = frames(batch)
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours, limit=mqtt_wire.READ_SIZE * 4)
    conn = mqtt_wire.Connection(reader, writer, keepalive=60)
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    got: list[mqtt_wire.Message] = []

    async def parse() -> None:
        await loop.sock_sendall(theirs, data)
        got.clear()
        while len(got) < batch:
            got.extend(await conn.batch(batch - len(got)))

    mapper = Mapper.from_spec(
        "bench", {"topics": [{"topic": TOPIC, "type": "t", "payload": "json"}], "type_prefix": ""}
    )
    made: list[CloudEvent] = []

    async def make() -> None:  # as the source does: one clock reading and one id draw a batch
        made.clear()
        now = time.time()
        if uuid7_many is None:  # a version before ids were made per batch
            made.extend(mapper.event(m.topic, m.payload, now) for m in got)
        else:
            ids = uuid7_many(len(got))
            pairs = zip(got, ids, strict=True)
            made.extend(mapper.event(m.topic, m.payload, now, id) for m, id in pairs)
        for event in made:
            event.encoded  # noqa: B018 -- part of making it

    out = {"parse": await cpu_per_event(rounds, batch, parse)}
    out["make"] = await cpu_per_event(rounds, batch, make)
    with tempfile.TemporaryDirectory(prefix="ondo-bench-stages-") as tmp:
        bus = SqliteBus(Path(tmp) / "bus.db")
        try:
            batches = []
            for _ in range(rounds):  # made beforehand: the append alone is measured
                await make()
                batches.append(list(made))

            async def append() -> None:
                await bus.append(batches.pop())

            out["append"] = await cpu_per_event(rounds, batch, append)
            position = [0]

            async def read_back() -> None:
                stored = await bus.read(position[0], batch)
                position[0] = stored[-1].seq

            out["read_back"] = await cpu_per_event(rounds, batch, read_back)
        finally:
            await bus.close()
    writer.close()
    theirs.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    stages = asyncio.run(measure(args.batch, args.rounds))
    print(
        json.dumps(
            {
                "bench": "sources_mqtt_stages",
                "ondo": str(Path(ondo.__file__).parents[1]),
                "batch": args.batch,
                "cpu_us_per_event": {**stages, "total": round(sum(stages.values()), 1)},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
