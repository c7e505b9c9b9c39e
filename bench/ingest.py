"""Benchmark "durable ingest": CloudEvents acknowledged (202) over HTTP, against plain SQLite.

Run:  .venv/bin/python bench/ingest.py [--quick]     (also a section of bench/matcher.py)

Starts `ondo up` (default SQLite bus, synchronous=FULL: a 202 survives kill -9 and power loss)
and measures, in the same run and on the same disk:

- http_single: one event per POST over 32 keep-alive connections; events/s answered 202.
- http_batch: batches of 100 (application/cloudevents-batch+json) over 8 connections.
- bus_in_process: `SqliteBus.append` of one event from 32 concurrent tasks, no HTTP; also how
  many events each group commit carried.
- the baselines: the same encoded events INSERTed into a plain SQLite table (WAL,
  synchronous=FULL) from one thread, one COMMIT per event and one COMMIT per 100 events.

Ratios compare each ondo figure with the baseline of the same commit shape. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from tests.functional.loadgen import Connection  # noqa: E402
from tests.functional.platform import RunningPlatform  # noqa: E402

from ondo.backends.bus.sqlite import SqliteBus  # noqa: E402
from ondo.events import CloudEvent  # noqa: E402

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
BATCH_SIZE = 100


def make_events(run: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"{run}-{n}",
            "source": f"/bench/{n % 16}",
            "type": "bench.ingest",
            "datacontenttype": "application/json",
            "data": {"n": n, "sku": f"SKU-{n % 997}", "qty": n % 7, "note": "x" * 64},
        }
        for n in range(count)
    ]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def post_all(
    platform: RunningPlatform, bodies: list[bytes], content_type: str, connections: int
) -> tuple[float, int]:
    """POST every body over `connections` keep-alive connections; (seconds, non-202 answers)."""
    pending = iter(bodies)
    refused = 0

    async def worker() -> None:
        nonlocal refused
        connection = Connection(platform.url, platform.token)
        try:
            for body in pending:
                answer = await connection.post("/v1/events", body, content_type)
                refused += answer.status != 202
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, refused


def http_figures(workdir: Path, count: int) -> dict[str, Any]:
    with RunningPlatform(workdir / "platform") as platform:
        single = [json.dumps(e).encode() for e in make_events("single", count)]
        batched = [json.dumps(b).encode() for b in chunks(make_events("batch", count), BATCH_SIZE)]
        asyncio.run(post_all(platform, single[:200], STRUCTURED, 8))  # warm up the connections
        single_s, single_refused = asyncio.run(post_all(platform, single, STRUCTURED, 32))
        batch_s, batch_refused = asyncio.run(post_all(platform, batched, BATCH, 8))
    return {
        "http_single_events_per_s": round(count / single_s),
        "http_single_refused": single_refused,
        "http_batch_events_per_s": round(count / batch_s),
        "http_batch_refused": batch_refused,
    }


def bus_figures(workdir: Path, count: int) -> dict[str, Any]:
    events = [CloudEvent.from_json_dict(e) for e in make_events("bus", count)]

    async def run() -> tuple[float, int]:
        bus = SqliteBus(workdir / "bus-only.db")
        pending = iter(events)

        async def worker() -> None:
            for event in pending:
                await bus.append([event])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        elapsed = time.perf_counter() - started
        transactions = bus.counters.transactions
        await bus.close()
        return elapsed, transactions

    elapsed, transactions = asyncio.run(run())
    return {
        "bus_in_process_events_per_s": round(count / elapsed),
        "bus_events_per_commit": round(count / transactions, 1),
    }


def sqlite_baseline(workdir: Path, count: int, per_commit: int) -> float:
    """events/s INSERTing the same JSON bodies into a plain WAL table, COMMIT every `per_commit`."""
    bodies = [json.dumps(e, separators=(",", ":")).encode() for e in make_events("base", count)]
    path = workdir / f"plain-{per_commit}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT, body BLOB)")
    started = time.perf_counter()
    for group in chunks(bodies, per_commit):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (id, body) VALUES (?, ?)",
            [(str(i), b) for i, b in enumerate(group)],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def ingest_section(quick: bool = False) -> dict[str, Any]:
    count = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="ondo-bench-ingest-") as tmp:
        workdir = Path(tmp)
        figures = http_figures(workdir, count)
        figures.update(bus_figures(workdir, count))
        per_event = sqlite_baseline(workdir, count, 1)
        per_batch = sqlite_baseline(workdir, count, BATCH_SIZE)
    figures["baseline_sqlite_commit_per_event_events_per_s"] = round(per_event)
    figures["baseline_sqlite_commit_per_100_events_per_s"] = round(per_batch)
    figures["ratio_http_single_vs_commit_per_event"] = round(
        figures["http_single_events_per_s"] / per_event, 3
    )
    figures["ratio_http_batch_vs_commit_per_100"] = round(
        figures["http_batch_events_per_s"] / per_batch, 3
    )
    figures["ratio_bus_in_process_vs_commit_per_event"] = round(
        figures["bus_in_process_events_per_s"] / per_event, 3
    )
    return {"events": count, "durability": "synchronous=FULL (WAL)", **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events")
    args = parser.parse_args()
    print(json.dumps({"durable_ingest": ingest_section(quick=args.quick)}, indent=2))


if __name__ == "__main__":
    main()
