"""Benchmark "decide": the rule decision and the action queue's drain on each store, in process.

Run:  .venv/bin/python bench/decide.py [--configs embedded,distributed] [--events N]
      ONDO_SRC=/path/to/other/checkout/src .venv/bin/python bench/decide.py   (its ondo instead)

What `bench/rules.py` measures end to end goes through HTTP, the bus, sandboxes and the
function records, so on a shared machine its figures move with everything else that runs. This
one keeps only the two store-bound stages, on a real Platform (its store, rules engine and
action queue; a memory bus; services not started):

- decide: N events (`bench.hit`, each a new id) through `RuleEngine.dispatch_now` in chunks of
  50, as the dispatcher hands them over (`on bench.hit do emit bench.done`, its `emit` a kind
  that does nothing: every event fires); events/s. Then `redecide`: the same events again,
  each finding its decision (a redelivery).
- drain: the action queue (64 workers) started on the N jobs those firings made, whose kind
  does nothing: jobs/s from start until every job succeeded (claim and settle alone).

With `--subjects K`, each event is about one of K users (`subject`), and the rule is a
developer's holding each of them a consent grant (security/consent.py): the consent check on
the hot path. A checkout without consent decides the same events without it.

`embedded` is the SQLite store in a temporary data dir; `distributed` PostgreSQL (`--store`,
default postgresql://postgres@127.0.0.1:5432/test) under a cluster of its own, dropped at the
end. Compare two checkouts by running this script once with each (`ONDO_SRC`), alternating;
read the ratios. Prints JSON; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("ONDO_SRC") or str(REPO / "src"))
sys.path.insert(1, str(REPO / "bench"))

from configs import POSTGRES_URL  # noqa: E402

from ondo.actions.base import ActionResult  # noqa: E402
from ondo.backends.bus.base import StoredEvent  # noqa: E402
from ondo.config import Config  # noqa: E402
from ondo.events import CloudEvent  # noqa: E402
from ondo.platform import Platform  # noqa: E402

CHUNK = 50  # the dispatcher's events per unit of work (rules/dispatcher.py CHUNK)


class NoopKind:
    """An action kind that does nothing: what is left is the queue's own cost per job. It
    takes the place of `emit` (the rule language knows its action words)."""

    kind = "emit"
    destinations = False

    def validate(self, action: Any, namespace: str) -> None:
        return None

    async def perform(self, request: Any, attempt: int) -> ActionResult:
        return ActionResult(ok=True)


async def measure(store_url: str, events: int, subjects: int = 0) -> dict[str, Any]:
    cluster = f"bench_{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="ondo-bench-decide-") as tmp:
        config = Config(
            data_dir=Path(tmp), bus_url="memory://", store_url=store_url, cluster=cluster
        )
        platform = Platform(config)
        platform.actions.kinds.add(NoopKind())
        await platform.store.open()
        try:
            return await _stages(platform, events, subjects)
        finally:
            await platform.rules.stop()
            await platform.bus.close()
            await platform.store.close()
            if store_url:
                await _drop(store_url, cluster)


async def _stages(platform: Platform, events: int, subjects: int) -> dict[str, Any]:
    rules = platform.rules
    await rules.start()
    book = rules.book
    rule = "on bench.hit do emit bench.done"
    owner = await _consenting(platform, subjects) if subjects else "admin"
    await book.add(book.prepare("default", owner, name="b", text=rule))
    now = platform.clock.now()
    batch = [StoredEvent(n + 1, _event(n, subjects), now, "default") for n in range(events)]
    decide = await _timed(lambda: _decide_all(platform, batch))
    redecide = await _timed(lambda: _decide_all(platform, batch))
    queue = platform.actions
    started = time.perf_counter()
    await queue.start()
    while (await queue.counts())["succeeded"] < events:
        await asyncio.sleep(0.01)
    drain = time.perf_counter() - started
    await queue.stop()
    return {
        "events": events,
        "decide_events_per_s": round(events / decide, 1),
        "redecide_events_per_s": round(events / redecide, 1),
        "drain_jobs_per_s": round(events / drain, 1),
    }


def _event(n: int, subjects: int) -> CloudEvent:
    about = {"subject": f"s{n % subjects}"} if subjects else {}
    return CloudEvent(source="bench", type="bench.hit", id=f"e{n}", **about)


async def _consenting(platform: Platform, subjects: int) -> str:
    """K citizens who each grant `bench.*` to a developer, whose name is returned."""
    from ondo.backends.store.repositories.tokens import Principal, User

    owner, repos = "bench-dev", platform.store.repos
    await repos.tokens.put_user(User("default", owner, "developer", "user", 0.0, "admin"))
    grants = getattr(platform, "grants", None)  # a checkout without consent has none
    for k in range(subjects):
        name = f"s{k}"
        await repos.tokens.put_user(User("default", name, "citizen", "user", 0.0, "admin"))
        if grants is not None:
            from ondo.security.grants import parse_request

            wanted = parse_request({"to": owner, "types": ["bench.*"]}, platform.clock.now())
            await grants.give(Principal(name, "default", "citizen"), "default", wanted)
    return owner


async def _decide_all(platform: Platform, batch: list[StoredEvent]) -> None:
    for start in range(0, len(batch), CHUNK):
        await platform.rules.dispatch_now(batch[start : start + CHUNK])


async def _timed(fn: Any) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def _drop(url: str, cluster: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{cluster}" CASCADE')
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="embedded,distributed")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--store", default=POSTGRES_URL, help="the distributed store's URL")
    parser.add_argument(
        "--subjects", type=int, default=0, help="events about K users who granted the rule's owner"
    )
    args = parser.parse_args()
    urls = {"embedded": "", "distributed": args.store}
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in urls]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; expected embedded,distributed")
    out: dict[str, Any] = {
        "bench": "decide",
        "src": os.environ.get("ONDO_SRC") or str(REPO / "src"),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    for name in names:
        out[name] = asyncio.run(measure(urls[name], args.events, args.subjects))
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
