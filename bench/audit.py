"""Benchmark "audit": what one audit append costs, and what auditing costs a rule change.

Run:  .venv/bin/python bench/audit.py [--appends N] [--rules N] [--rounds R] [--no-postgres]

1. Appends/s of `AuditLog.record` (lock, head read, hash, insert, commit, anchor file) on
   SQLite and PostgreSQL, at concurrency 1 and 4 (4 tasks on one loop; on PostgreSQL also two
   stores, i.e. two processes' pools, 2 tasks each). Baseline, measured in the same run and
   alternated with it round by round: the same row inserted into a plain table with the same
   columns, one transaction per row, no chain (`plain_inserts_per_s`). The ratio is what the
   chain adds to a commit.
2. Bytes per entry on SQLite (table and indexes, from the page count before and after).
3. The API's rule-create rate (`POST /v1/rules`, in process through httpx's ASGI transport, one
   request at a time) with the audit log and with an `AuditLog` whose `record` does nothing,
   alternated round by round: what auditing costs a rule change.

Printed: JSON, medians over the rounds and each ratio. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ondo.api.app import create_app
from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.audit import AuditEntry
from ondo.config import Config
from ondo.platform import Platform
from ondo.security.audit import AuditLog
from ondo.security.audit_anchor import HeadAnchor

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PLAIN_TABLE = """CREATE TABLE bench_plain (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, namespace TEXT NOT NULL, principal TEXT NOT NULL,
    action TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, about TEXT NOT NULL,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"""
DETAIL: dict[str, Any] = {"owner": "admin", "changes": {"rule.create": 1}}


async def _rate(count: int, tasks: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Calls of `one(i)` per second, `tasks` at a time."""
    started = time.perf_counter()

    async def worker(k: int) -> None:
        for i in range(k, count, tasks):
            await one(i)

    await asyncio.gather(*(worker(k) for k in range(tasks)))
    return count / (time.perf_counter() - started)


async def _plain_insert(store: Store, i: int) -> None:
    async with store.database.transaction("read committed") as sql:
        await sql.execute(
            "INSERT INTO bench_plain (at, namespace, principal, action, resource, outcome, about,"
            " detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                "default",
                "admin",
                "POST /v1/rules",
                f"rule:r{i}",
                "ok",
                "alice",
                json.dumps(DETAIL),
                "0" * 64,
                "1" * 64,
            ),
        )


async def _stores(url: str, cluster: str, count: int) -> list[Store]:
    stores = [open_store(url, cluster=cluster) for _ in range(count)]
    for store in stores:
        await store.open()
    return stores


async def appends(url: str, cluster: str, tmp: Path, n: int, rounds: int) -> dict[str, Any]:
    """Chain appends against plain inserts, rounds alternating which goes first."""
    stores = await _stores(url, cluster, 2 if url.startswith("postgres") else 1)
    main = stores[0]
    await main.database.sql.execute(PLAIN_TABLE.replace("INTEGER PRIMARY KEY", _serial(url)))
    logs = [AuditLog(s, time.time, HeadAnchor(tmp / f"head{i}")) for i, s in enumerate(stores)]
    results: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    async def record(log: AuditLog, i: int) -> AuditEntry:
        return await log.record(
            "default", "admin", "POST /v1/rules", f"rule:r{i}", about="alice", **DETAIL
        )

    try:
        for r in range(rounds):
            for first in (True, False) if r % 2 == 0 else (False, True):
                if first:
                    note("chain_c1", await _rate(n, 1, lambda i: record(logs[0], i)))
                    note("chain_c4", await _rate(n, 4, lambda i: record(logs[0], i)))
                    if len(logs) == 2:
                        note(
                            "chain_2stores_c4", await _rate(n, 4, lambda i: record(logs[i % 2], i))
                        )
                else:
                    note("plain_c1", await _rate(n, 1, lambda i: _plain_insert(main, i)))
                    note("plain_c4", await _rate(n, 4, lambda i: _plain_insert(main, i)))
        verdict = await logs[0].verify()
        assert verdict.ok, verdict.problem  # the chain stayed whole under contention
        out = {name: round(statistics.median(v), 1) for name, v in results.items()}
        out["chain/plain_c1"] = round(out["chain_c1"] / out["plain_c1"], 3)
        out["chain/plain_c4"] = round(out["chain_c4"] / out["plain_c4"], 3)
        out["entries_verified"] = verdict.checked
        return out
    finally:
        for store in stores:
            await store.close()


def _serial(url: str) -> str:
    return "BIGSERIAL PRIMARY KEY" if url.startswith("postgres") else "INTEGER PRIMARY KEY"


async def entry_bytes(tmp: Path, n: int) -> float:
    """Bytes one entry adds to an SQLite store (table and indexes)."""
    store = open_store(f"sqlite:///{tmp / 'size.db'}", cluster="ondo")
    await store.open()
    try:
        log = AuditLog(store, time.time)
        for i in range(100):  # past the first pages
            await log.record("default", "admin", "POST /v1/rules", f"rule:r{i}", **DETAIL)
        before = await _pages(store)
        for i in range(n):
            await log.record(
                "default", "admin", "POST /v1/rules", f"rule:r{i}", about="alice", **DETAIL
            )
        return (await _pages(store) - before) / n
    finally:
        await store.close()


async def _pages(store: Store) -> int:
    count = await store.database.sql.fetch_one("PRAGMA page_count")
    size = await store.database.sql.fetch_one("PRAGMA page_size")
    assert count is not None and size is not None
    return int(count[0]) * int(size[0])


class Unaudited(AuditLog):
    """The baseline: an audit log that records nothing."""

    async def record(self, *args: Any, **kwargs: Any) -> AuditEntry:
        return None  # type: ignore[return-value]  # nobody reads what the guard records


async def api_rules(tmp: Path, n: int, rounds: int) -> dict[str, Any]:
    """POST /v1/rules per second, audited against unaudited, alternating."""
    config = Config(data_dir=tmp / "api", bus_url="memory://")
    platform = Platform(config)
    await platform.store.open()
    token, _ = await platform.tokens.ensure_admin_token(config.token_path, time.time())
    audited, unaudited = platform.audit, Unaudited(platform.store, time.time)
    app = create_app(platform)
    rates: dict[str, list[float]] = {"audited": [], "unaudited": []}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers
        ) as client:
            for r in range(rounds):
                order = ("audited", "unaudited") if r % 2 == 0 else ("unaudited", "audited")
                for name in order:
                    platform.audit = audited if name == "audited" else unaudited
                    prefix = f"{name}-{r}-"

                    async def create(i: int, prefix: str = prefix) -> None:
                        body = {"name": f"{prefix}{i}", "text": "on b.x about alice do emit b.y"}
                        answer = await client.post("/v1/rules", json=body)
                        assert answer.status_code == 201, answer.text

                    rates[name].append(await _rate(n, 1, create))
    finally:
        await platform.bus.close()
        await platform.store.close()
        platform.data_lock.release()
    out = {f"{k}_rules_per_s": round(statistics.median(v), 1) for k, v in rates.items()}
    out["audited/unaudited"] = round(out["audited_rules_per_s"] / out["unaudited_rules_per_s"], 3)
    return out


async def _drop(cluster: str) -> None:
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{cluster}" CASCADE')
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"appends_per_round": args.appends, "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="ondo-bench-audit-") as raw:
        tmp = Path(raw)
        out["sqlite"] = await appends(
            f"sqlite:///{tmp / 'ondo.db'}", "ondo", tmp, args.appends, args.rounds
        )
        if not args.no_postgres:
            cluster = f"bench_{uuid.uuid4().hex[:10]}"
            try:
                out["postgres"] = await appends(POSTGRES, cluster, tmp, args.appends, args.rounds)
            finally:
                await _drop(cluster)
        out["sqlite_bytes_per_entry"] = round(await entry_bytes(tmp, args.appends), 1)
        out["api_rule_create"] = await api_rules(tmp, args.rules, args.rounds)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=400)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
