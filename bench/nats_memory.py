"""Benchmark that prints JSON: what the NATS bus's layout costs the NATS server in memory.

Run:  .venv/bin/python bench/nats_memory.py [--quick] [--events N]

Starts its own nats-server (a free port, a temporary store) per configuration, publishes N small
events pipelined, and reads the server's resident memory (VmRSS) before, after publishing, and
after a restart on the same store. Configurations, baseline first:

- `plain`: one subject, no message id (the baseline);
- `bus`: one subject (per namespace), a `Nats-Msg-Id` per event (JetStream deduplication): as
  the NATS bus publishes since the store indexes its lookups (issue 11);
- `subjects`: a subject per event, no message id;
- `bus_before_store_index`: both, as the NATS bus published while the subject per event was its
  lookup index.

Figures are bytes per event above the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CONFIGS = {"plain": (False, False), "bus": (True, False), "subjects": (False, True)}
CONFIGS["bus_before_store_index"] = (True, True)
PAYLOAD = b'{"specversion":"1.0","id":"x","source":"/bench","type":"bench.tick","data":{"n":1}}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def h(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


async def publish(port: int, count: int, msg_id: bool, subjects: bool) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="m", subjects=["m.>"], duplicate_window=86400))
    for start in range(0, count, 500):
        pending = []
        for n in range(start, min(count, start + 500)):
            subject = f"m.ev.default.{h(str(n), 4)}.{h('/bench', 4)}" if subjects else "m.ev.x"
            headers = {"Nats-Msg-Id": h(str(n), 16)} if msg_id else None
            pending.append(await js.publish_async(subject, PAYLOAD, headers=headers))
        await asyncio.gather(*pending)
    await nc.close()


def start(command: list[str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(command[command.index("-p") + 1])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            time.sleep(0.5)  # JetStream recovers its streams after the port opens
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nats-server did not start")


def measure(count: int, msg_id: bool, subjects: bool) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="ondo-bench-nats-") as store:
        port = free_port()
        command = [SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
        server = start(command)
        before = rss_bytes(server.pid)
        asyncio.run(publish(port, count, msg_id, subjects))
        filled = rss_bytes(server.pid) - before
        server.terminate()
        server.wait()
        server = start(command)
        restarted = rss_bytes(server.pid) - before
        server.kill()
        server.wait()
    return {"running": filled, "after_restart": restarted}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 events (a smoke run)")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    count = 20_000 if args.quick else args.events
    grown = {name: measure(count, *flags) for name, flags in CONFIGS.items()}
    base = grown["plain"]
    per_event = {
        name: {k: round((v[k] - base[k]) / count) for k in v}
        for name, v in grown.items()
        if name != "plain"
    }
    print(
        json.dumps(
            {
                "benchmark": "nats_memory",
                "events": count,
                "unit": "bytes of nats-server RSS per event, above the plain baseline",
                "baseline_plain_bytes_per_event": {k: round(v / count) for k, v in base.items()},
                "per_event": per_event,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
