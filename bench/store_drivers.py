"""Benchmark "store drivers": asyncpg against psycopg 3 (+ psycopg_pool) on the rule decision.

Run:  .venv/bin/python bench/store_drivers.py [--quick] [--rounds N] [--seconds S]
      (psycopg comes with the `bench` extra: `pip install -e '.[bench]'`)

The transaction measured is the one the rules engine commits for each firing, in one
SERIALIZABLE transaction (what `Store.atomic(..., isolation="serializable")` asks for):

1. insert the event's count-window row (`ON CONFLICT DO NOTHING`: a redelivered event counts once),
2. count the rows of that rule and key inside the window,
3. insert the enforcement record,
4. insert 1 to 3 action job rows (one per action of the rule).

A serialization failure is retried, as `Store.atomic` does; the latency of a decision includes
its retries, and the number of retries is reported. Keys are drawn from `--keys` subjects, so
concurrent decisions rarely contend for one window (as in a real stream of distinct subjects).

Each round measures both drivers at concurrency 1 and 8 (8 tasks on one event loop, a pool of 8
connections), alternating which driver goes first, so drift on a shared machine falls on both.
Both run on uvloop (as `ondo up` does), both prepare their statements (asyncpg always does;
psycopg after `prepare_threshold` executions, here 0: at once), and both keep their pools open for
the whole run. The tables live in a schema of their own (`bench_drivers_<random>`), dropped at
the end. `--synchronous-commit off` takes the WAL flush out of each commit (at concurrency 1 the
flush dominates on a busy disk), which leaves what the drivers themselves cost.

Printed: JSON with, per driver and concurrency, transactions/s and p50/p99 latency (median and
range over the rounds), and the ratio asyncpg/psycopg of the medians. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg

try:
    import psycopg
    import psycopg_pool
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("bench/store_drivers.py needs psycopg: pip install -e '.[bench]'")

DSN = "postgresql://postgres@127.0.0.1:5432/test"
WINDOW_S = 300.0
CONCURRENCIES = (1, 8)

SCHEMA_SQL = """
CREATE TABLE rule_counts (
    rule_id TEXT NOT NULL, key TEXT NOT NULL, event_uid TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL, PRIMARY KEY (rule_id, event_uid));
CREATE INDEX rule_counts_by_key ON rule_counts (rule_id, key, at);
CREATE TABLE rule_enforcements (
    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, rule TEXT NOT NULL, stage TEXT NOT NULL,
    event_source TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    actions TEXT NOT NULL, enqueued INTEGER NOT NULL, event TEXT,
    UNIQUE (namespace, rule, stage, event_source, event_id));
CREATE INDEX rule_enforcements_by_rule ON rule_enforcements (namespace, rule, at);
CREATE TABLE action_jobs (
    id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL, rule TEXT NOT NULL, action_index INTEGER NOT NULL,
    kind TEXT NOT NULL, enforcement_id TEXT NOT NULL,
    event_source TEXT NOT NULL, event_id TEXT NOT NULL, status TEXT NOT NULL,
    max_attempts INTEGER NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL,
    request TEXT NOT NULL, lane TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX action_jobs_due ON action_jobs (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX action_jobs_enforcement ON action_jobs (enforcement_id);
"""

# Written once with `$n` placeholders (asyncpg's); psycopg gets them as `%s` (all are in order).
INSERT_COUNT = (
    "INSERT INTO rule_counts (rule_id, key, event_uid, at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING"
)
COUNT_WINDOW = "SELECT count(*) FROM rule_counts WHERE rule_id = $1 AND key = $2 AND at > $3"
INSERT_ENFORCEMENT = (
    "INSERT INTO rule_enforcements (id, namespace, rule, stage, event_source, event_id, "
    "event_type, at, outcome, detail, actions, enqueued, event) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
INSERT_JOB = (
    "INSERT INTO action_jobs (key, namespace, rule, action_index, kind, enforcement_id, "
    "event_source, event_id, status, max_attempts, next_attempt_at, request, lane, "
    "created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


def as_psycopg(sql: str) -> str:
    for n in range(15, 0, -1):
        sql = sql.replace(f"${n}", "%s")
    return sql


class Decision:
    """One rule firing's rows (the same inputs for both drivers)."""

    def __init__(self, rng: random.Random, keys: int) -> None:
        now = time.time()
        self.rule = "bench-rule"
        self.key = f"subject-{rng.randrange(keys)}"
        self.event_id = uuid.uuid4().hex
        self.since = now - WINDOW_S
        self.count_row = (self.rule, self.key, self.event_id, now)
        enforcement_id = uuid.uuid4().hex
        event = json.dumps({"id": self.event_id, "type": "bench.hit", "data": {"n": 1}})
        actions = rng.randint(1, 3)
        self.enforcement = (
            enforcement_id, "default", self.rule, "decide", "bench", self.event_id,
            "bench.hit", now, "fired", "", json.dumps(list(range(actions))), 1, event,
        )  # fmt: skip
        request = json.dumps({"function": "echo", "payload": {"n": 1}})
        self.jobs = [self.job(i, enforcement_id, request, now) for i in range(actions)]

    def job(self, index: int, enforcement_id: str, request: str, now: float) -> tuple[Any, ...]:
        key = f"{self.event_id}:{self.rule}:{index}"
        return (
            key, "default", self.rule, index, "invoke", enforcement_id, "bench", self.event_id,
            "pending", 5, now, request, "default/echo", now, now,
        )  # fmt: skip


class Driver(Protocol):
    name: str

    async def open(self, dsn: str, settings: dict[str, str], size: int) -> None: ...
    async def decide(self, d: Decision) -> None: ...  # raises Conflict on a serialization failure
    async def close(self) -> None: ...


class Conflict(Exception):
    """Raised when the decision lost to a concurrent one (SQLSTATE 40001/40P01): retry it."""


class Asyncpg:
    name = "asyncpg"

    async def open(self, dsn: str, settings: dict[str, str], size: int) -> None:
        self.pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn, min_size=size, max_size=size, server_settings=settings
        )

    async def decide(self, d: Decision) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction(isolation="serializable"):
                await conn.execute(INSERT_COUNT, *d.count_row)
                await conn.fetchval(COUNT_WINDOW, d.rule, d.key, d.since)
                await conn.execute(INSERT_ENFORCEMENT, *d.enforcement)
                await conn.executemany(INSERT_JOB, d.jobs)
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
            raise Conflict from exc

    async def close(self) -> None:
        await self.pool.close()


class AsyncpgKeepSession(Asyncpg):
    """asyncpg as engine.py configures its pool: no reset query when a connection is released
    (the default `Connection.reset` costs a round trip per release)."""

    name = "asyncpg_no_reset"

    async def open(self, dsn: str, settings: dict[str, str], size: int) -> None:
        self.pool = await asyncpg.create_pool(
            dsn, min_size=size, max_size=size, server_settings=settings, reset=_keep_session
        )


async def _keep_session(_conn: object) -> None:
    return None


class Psycopg:
    name = "psycopg"

    async def open(self, dsn: str, settings: dict[str, str], size: int) -> None:
        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            conn.prepare_threshold = 0  # prepare at once, as asyncpg does
            await conn.set_isolation_level(psycopg.IsolationLevel.SERIALIZABLE)
            await conn.set_autocommit(True)  # transactions only where asked, as with asyncpg

        self.pool = psycopg_pool.AsyncConnectionPool(
            dsn,
            min_size=size,
            max_size=size,
            kwargs={"options": " ".join(f"-c {k}={v}" for k, v in settings.items())},
            configure=configure,
            open=False,
        )
        await self.pool.open(wait=True)
        self.sql = {s: as_psycopg(s) for s in (INSERT_COUNT, COUNT_WINDOW, INSERT_ENFORCEMENT)}
        self.job_sql = as_psycopg(INSERT_JOB)

    async def decide(self, d: Decision) -> None:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                # BEGIN ISOLATION LEVEL SERIALIZABLE (the connection's level) in one statement
                await conn.execute(self.sql[INSERT_COUNT], d.count_row)
                cur = await conn.execute(self.sql[COUNT_WINDOW], (d.rule, d.key, d.since))
                await cur.fetchone()
                await conn.execute(self.sql[INSERT_ENFORCEMENT], d.enforcement)
                async with conn.cursor() as jobs:
                    await jobs.executemany(self.job_sql, d.jobs)
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected) as exc:
            raise Conflict from exc

    async def close(self) -> None:
        await self.pool.close()


async def decide_retrying(driver: Driver, d: Decision) -> int:
    """The decision as `Store.atomic` runs it; returns how many times it was retried."""
    retries = 0
    while True:
        try:
            await driver.decide(d)
            return retries
        except Conflict:
            retries += 1


async def measure(
    driver: Driver, concurrency: int, seconds: float, keys: int, seed: int
) -> dict[str, float]:
    rng = random.Random(seed)
    latencies: list[float] = []
    retries = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal retries
        while time.perf_counter() < deadline:
            d = Decision(rng, keys)
            started = time.perf_counter()
            retries += await decide_retrying(driver, d)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "tps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "decisions": len(latencies),
        "retries": retries,
    }


async def with_schema(dsn: str, body: Callable[[str], Awaitable[Any]]) -> Any:
    schema = f"bench_drivers_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        await admin.execute(SCHEMA_SQL)
        return await body(schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async def body(schema: str) -> dict[str, Any]:
        drivers: list[Driver] = [Asyncpg(), AsyncpgKeepSession(), Psycopg()]
        settings = {"search_path": schema, "synchronous_commit": args.synchronous_commit}
        for driver in drivers:
            await driver.open(args.dsn, settings, max(CONCURRENCIES))
        samples: dict[str, dict[int, list[dict[str, float]]]] = {
            d.name: {c: [] for c in CONCURRENCIES} for d in drivers
        }
        try:
            for driver in drivers:  # warm up: statements prepared, pool connections used
                await measure(driver, max(CONCURRENCIES), args.warmup, args.keys, seed=0)
            for round_ in range(args.rounds):
                order = drivers if round_ % 2 == 0 else drivers[::-1]
                for concurrency in CONCURRENCIES:
                    for driver in order:
                        found = await measure(
                            driver, concurrency, args.seconds, args.keys, seed=round_
                        )
                        samples[driver.name][concurrency].append(found)
        finally:
            for driver in drivers:
                await driver.close()
        return samples

    samples = await with_schema(args.dsn, body)
    results: dict[str, Any] = {}
    for name, by_concurrency in samples.items():
        results[name] = {
            f"concurrency_{c}": {
                "transactions_per_s": summary([s["tps"] for s in rounds]),
                "p50_ms": summary([s["p50_ms"] for s in rounds]),
                "p99_ms": summary([s["p99_ms"] for s in rounds]),
                "decisions": int(sum(s["decisions"] for s in rounds)),
                "retries": int(sum(s["retries"] for s in rounds)),
            }
            for c, rounds in by_concurrency.items()
        }
    ratios = {
        f"concurrency_{c}": round(
            results["asyncpg"][f"concurrency_{c}"]["transactions_per_s"]["median"]
            / results["psycopg"][f"concurrency_{c}"]["transactions_per_s"]["median"],
            2,
        )
        for c in CONCURRENCIES
    }
    return {
        "bench": "store_drivers",
        "transaction": "serializable: count-window insert + window count + enforcement + 1-3 jobs",
        "versions": {"asyncpg": asyncpg.__version__, "psycopg": psycopg.__version__},
        "psycopg_impl": psycopg.pq.__impl__,
        "rounds": args.rounds,
        "seconds_per_cell": args.seconds,
        "keys": args.keys,
        "synchronous_commit": args.synchronous_commit,
        "results": results,
        "asyncpg_over_psycopg_tps": ratios,
        "no_reset_over_asyncpg_tps": {
            f"concurrency_{c}": round(
                results["asyncpg_no_reset"][f"concurrency_{c}"]["transactions_per_s"]["median"]
                / results["asyncpg"][f"concurrency_{c}"]["transactions_per_s"]["median"],
                2,
            )
            for c in CONCURRENCIES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per driver and concurrency")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--keys", type=int, default=1000, help="distinct window keys")
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="off: commits do not wait for the WAL flush, which leaves the drivers' own cost",
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.warmup = 2, 1.0, 0.5
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        print(json.dumps(runner.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
