"""Benchmark that prints JSON: the rules engine's cost per event as the number of rules grows.

Run:  .venv/bin/python bench/rules_dispatch.py [--quick]

An in-process platform (memory bus, manual clock, not started) holds N rules on distinct event
types; each event matches exactly one of them and fires it (a decision, an enforcement record
and one action job). The baseline is the same run with a single rule, so `ratio` says how much
an event costs with N rules relative to one: it should stay near 1 (the Matcher indexes rules).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from ondo.backends.bus.base import StoredEvent
from ondo.config import Config
from ondo.events import CloudEvent
from ondo.platform import Platform

RULE_COUNTS = (1, 100, 1_000)


async def per_event_us(rule_count: int, events: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ondo-bench-") as tmp:
        platform = Platform(Config(data_dir=Path(tmp), manual_clock=True, bus_url="memory://"))
        await platform.store.open()
        await platform.rules.start()
        book = platform.rules.book
        for i in range(rule_count):
            rule = book.prepare("default", "bench", name=f"r{i}", text=f"on t{i} do emit seen{i}")
            await book.add(rule)
        batch = [
            StoredEvent(n + 1, CloudEvent(source="bench", type=f"t{n % rule_count}"), 0.0)
            for n in range(events)
        ]
        started = time.perf_counter()
        for stored in batch:
            await platform.rules.dispatch_now([stored])
        elapsed = time.perf_counter() - started
        await platform.rules.stop()
        await platform.bus.close()
        await platform.store.close()
    return elapsed / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run)")
    args = parser.parse_args()
    events = 300 if args.quick else 3_000
    results = {n: asyncio.run(per_event_us(n, events)) for n in RULE_COUNTS}
    base = results[RULE_COUNTS[0]]
    print(
        json.dumps(
            {
                "bench": "rules_dispatch",
                "events": events,
                "per_event_us": {str(n): round(us, 1) for n, us in results.items()},
                "ratio_to_one_rule": {str(n): round(us / base, 2) for n, us in results.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
