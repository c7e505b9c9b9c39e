"""Benchmark that prints JSON: the bus backends' append and read throughput, SQLite vs NATS.

Run:  .venv/bin/python bench/bus.py [--quick] [--rounds N] [--nats nats://127.0.0.1:4222]

For each round, SQLite (synchronous=full, the default) and NATS JetStream are measured one after
the other, alternating which goes first, on fresh logs (a new file; a new --cluster, deleted
afterwards). Measured per backend:

- `append_1`: one event per append, 16 appends in flight at once (as concurrent HTTP posts are);
- `append_100`: batches of 100 events, one append at a time;
- `read`: the whole log read back in pages of 500, as the dispatcher reads.

Figures are events per second, the median over rounds; `nats_vs_sqlite` is NATS / SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ondo.backends.bus import Bus, open_bus
from ondo.events import CloudEvent

CONCURRENCY = 16


def events(prefix: str, count: int) -> list[CloudEvent]:
    return [
        CloudEvent(id=f"{prefix}{n}", source="/bench", type="bench.tick", data={"n": n})
        for n in range(count)
    ]


async def append_singles(bus: Bus, count: int) -> None:
    pending = iter(events("s", count))

    async def worker() -> None:
        for event in pending:
            await bus.append([event])

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def append_batches(bus: Bus, count: int) -> None:
    batch = events("b", count)
    for start in range(0, count, 100):
        await bus.append(batch[start : start + 100])


async def read_all(bus: Bus, _count: int) -> None:
    after = 0
    while page := await bus.read(after, 500):
        after = page[-1].seq


async def timed(step: Callable[[Bus, int], Awaitable[None]], bus: Bus, count: int) -> float:
    started = time.perf_counter()
    await step(bus, count)
    return count / (time.perf_counter() - started)


async def measure(open_one: Callable[[], Bus], singles: int, batched: int) -> dict[str, float]:
    bus = open_one()
    try:
        await bus.last_seq()  # connect / open before timing
        result = {
            "append_1": await timed(append_singles, bus, singles),
            "append_100": await timed(append_batches, bus, batched),
        }
        result["read"] = await timed(read_all, bus, singles + batched)
    finally:
        await bus.close()
    return result


def run_sqlite(singles: int, batched: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ondo-bench-bus-") as tmp:
        return asyncio.run(measure(lambda: open_bus(f"sqlite://{tmp}/bus.db"), singles, batched))


def run_nats(url: str, round_no: int, singles: int, batched: int) -> dict[str, float]:
    cluster = f"bench_{int(time.time())}_{round_no}"
    try:
        return asyncio.run(measure(lambda: open_bus(url, cluster=cluster), singles, batched))
    finally:
        asyncio.run(delete_cluster(url, cluster))


async def delete_cluster(url: str, cluster: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        for stream in (f"{cluster}_events", f"KV_{cluster}_offsets"):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    singles, batched = (300, 1_000) if args.quick else (3_000, 20_000)
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "nats": []}
    for round_no in range(args.rounds):
        order = ["sqlite", "nats"] if round_no % 2 == 0 else ["nats", "sqlite"]
        for backend in order:
            if backend == "sqlite":
                runs["sqlite"].append(run_sqlite(singles, batched))
            else:
                runs["nats"].append(run_nats(args.nats, round_no, singles, batched))
    medians = {
        backend: {k: round(statistics.median(r[k] for r in rs)) for k in rs[0]}
        for backend, rs in runs.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "bus",
                "unit": "events/s (median of rounds)",
                "rounds": args.rounds,
                "events": {"append_1": singles, "append_100": batched, "read": singles + batched},
                "concurrency_append_1": CONCURRENCY,
                "sqlite": medians["sqlite"],
                "nats": medians["nats"],
                "nats_vs_sqlite": {
                    k: round(medians["nats"][k] / medians["sqlite"][k], 2) for k in medians["nats"]
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
