"""Benchmark "sources_db": database changes -> events through the postgres and sqlite sources.

Run:  .venv/bin/python bench/sources_db.py [--rows 20000] [--rounds 3]
      [--configs embedded,distributed]

Starts `ondo up` (bench/rules.py's Platform), deploys an app with a `kind: postgres` source on a
scratch table of its own (a fresh schema in the `test` database, dropped afterwards) and a
`kind: sqlite` source on a scratch database file, then alternates in each round:

- postgres: N rows inserted in 4 transactions; rows/s from the first INSERT to the moment the
  source's `events` counter (GET /v1/sources/NAME) reaches them all (trigger, outbox, NOTIFY,
  drain, bus append);
- sqlite: the same with the file (polled every 100 ms);
- the baseline: N events of the same shape POSTed to /v1/events in batches of 500 (the drain's
  batch size), 4 in flight; events/s until the last batch is answered (durable on the bus).

Target (issue 12): database changes -> events >= 2,000 rows/s. The JSON printed gives each
figure's range over the rounds and whether the target was met; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from configs import BackendConfig, add_arguments, chosen  # noqa: E402
from rules import Platform  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_ROWS_PER_S = 2000
TRANSACTIONS = 4
POST_BATCH = 500
TABLE = "CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, score int, note text)"


def manifest(schema: str, table: str, sqlite_path: Path) -> str:
    return json.dumps(
        {
            "name": "benchdb",
            "sources": {
                "pg": {"kind": "postgres", "url": POSTGRES_URL, "schema": schema,
                       "tables": {table: None}},
                "lite": {"kind": "sqlite", "path": str(sqlite_path), "poll": "100ms",
                         "tables": {table: None}},
            },
        }
    )  # fmt: skip


async def pg(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def rows_sql(table: str, start: int, count: int) -> str:
    return (
        f"INSERT INTO {table} SELECT n, 'name ' || n, n % 100, 'a note about row ' || n"
        f" FROM generate_series({start}, {start + count - 1}) n"
    )


def sqlite_insert(path: Path, table: str, start: int, count: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
            [
                (n, f"name {n}", n % 100, f"a note about row {n}")
                for n in range(start, start + count)
            ],
        )
    conn.close()


async def emitted(api: httpx.AsyncClient, source: str) -> int:
    response = await api.get(f"/v1/sources/{source}")
    response.raise_for_status()
    return int(response.json()["events"])


async def until_emitted(api: httpx.AsyncClient, source: str, total: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (found := await emitted(api, source)) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"source {source}: {found} of {total} events in {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def round_postgres(api: httpx.AsyncClient, table: str, start: int, n: int) -> dict[str, Any]:
    before = await emitted(api, "pg")
    began = time.monotonic()
    per = n // TRANSACTIONS
    await pg(*(rows_sql(table, start + i * per, per) for i in range(TRANSACTIONS)))
    inserted = time.monotonic()
    done = await until_emitted(api, "pg", before + per * TRANSACTIONS, timeout=120 + n / 100)
    return _figures(per * TRANSACTIONS, began, inserted, done)


async def round_sqlite(api: httpx.AsyncClient, path: Path, table: str, start: int, n: int) -> Any:
    before = await emitted(api, "lite")
    began = time.monotonic()
    per = n // TRANSACTIONS
    for i in range(TRANSACTIONS):
        await asyncio.to_thread(sqlite_insert, path, table, start + i * per, per)
    inserted = time.monotonic()
    done = await until_emitted(api, "lite", before + per * TRANSACTIONS, timeout=120 + n / 100)
    return _figures(per * TRANSACTIONS, began, inserted, done)


def _figures(rows: int, began: float, inserted: float, done: float) -> dict[str, Any]:
    return {
        "rows": rows,
        "insert_s": round(inserted - began, 3),
        "total_s": round(done - began, 3),
        "rows_per_s": round(rows / (done - began), 1),
    }


def shaped_event(run: str, n: int) -> dict[str, Any]:
    """An event the size and shape of a row insert's."""
    row = {"id": n, "name": f"name {n}", "score": n % 100, "note": f"a note about row {n}"}
    return {
        "specversion": "1.0",
        "id": f"{run}-{n}",
        "source": "bench/baseline",
        "type": "db.row.inserted",
        "subject": f"rows/{n}",
        "data": {"table": "rows", "operation": "insert", "changed": list(row), "old": None,
                 "new": row, "user": "postgres", "schema": "public", "txid": 1000},
    }  # fmt: skip


async def round_baseline(api: httpx.AsyncClient, run: str, n: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(4)

    async def post(start: int) -> None:
        batch = [shaped_event(run, i) for i in range(start, min(start + POST_BATCH, n))]
        async with gate:
            (await api.post("/v1/events", json=batch)).raise_for_status()

    began = time.monotonic()
    await asyncio.gather(*(post(s) for s in range(0, n, POST_BATCH)))
    elapsed = time.monotonic() - began
    return {"events": n, "total_s": round(elapsed, 3), "events_per_s": round(n / elapsed, 1)}


async def measure(url: str, token: str, app: Path, args: argparse.Namespace) -> dict[str, Any]:
    schema, table = f"bench_cdc_{uuid.uuid4().hex[:8]}", f"rows_{uuid.uuid4().hex[:8]}"
    lite = app / "bench.db"
    await pg(f"CREATE SCHEMA {schema}", TABLE.format(table=f"{schema}.{table}"))
    with sqlite3.connect(lite) as conn:
        conn.execute(TABLE.format(table=table))
    conn.close()
    (app / "ondo.yaml").write_text(manifest(schema, table, lite))
    env = {**os.environ, "ONDO_URL": url, "ONDO_TOKEN": token, "PYTHONPATH": str(REPO / "src")}
    deploy = [sys.executable, "-m", "ondo", "deploy", str(app)]
    subprocess.run(deploy, env=env, check=True, capture_output=True, cwd=REPO)
    rounds: dict[str, list[dict[str, Any]]] = {"postgres": [], "sqlite": [], "baseline": []}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api:
            for name in ("pg", "lite"):
                await _connected(api, name)
            for r in range(args.rounds):
                start = 1 + r * args.rows
                rounds["baseline"].append(await round_baseline(api, f"b{r}", args.rows))
                rounds["postgres"].append(
                    await round_postgres(api, f"{schema}.{table}", start, args.rows)
                )
                rounds["sqlite"].append(await round_sqlite(api, lite, table, start, args.rows))
    finally:
        await pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {"rounds": rounds, "summary": summary(rounds)}


async def _connected(api: httpx.AsyncClient, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (await api.get(f"/v1/sources/{name}")).json().get("state") != "connected":
        if time.monotonic() > deadline:
            raise RuntimeError(f"source {name} did not connect: {await api.get('/v1/sources')}")
        await asyncio.sleep(0.1)


def summary(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def span(name: str, key: str) -> list[float]:
        values = [r[key] for r in rounds[name]]
        return [min(values), max(values)]

    base = span("baseline", "events_per_s")
    out: dict[str, Any] = {"baseline_post_events_per_s": base}
    for kind in ("postgres", "sqlite"):
        rate = span(kind, "rows_per_s")
        out[f"{kind}_rows_per_s"] = rate
        # each round against the baseline measured just before it (the load moves between rounds)
        ratios = [
            r["rows_per_s"] / b["events_per_s"]
            for r, b in zip(rounds[kind], rounds["baseline"], strict=True)
        ]
        out[f"{kind}_vs_baseline_per_round"] = [round(min(ratios), 2), round(max(ratios), 2)]
        out[f"{kind}_target_met"] = rate[0] >= TARGET_ROWS_PER_S
    return out


def measure_on(config: BackendConfig, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ondo-bench-sources-db-"))
    platform = Platform(root, 1, "all", config)
    app = root / "dbapp"
    app.mkdir()
    try:
        token = platform.wait_healthy()
        result = asyncio.run(measure(platform.url, token, app, args))
    finally:
        platform.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            config.drop()
    return {"backend": {"name": config.name, **config.describe()}, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per round (and events)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the data dir for inspection")
    add_arguments(parser)
    args = parser.parse_args()
    load_before = os.getloadavg()
    measured = {config.name: measure_on(config, args) for config in chosen(args)}
    out: dict[str, Any] = {
        "bench": "sources_db",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "configs": measured,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
