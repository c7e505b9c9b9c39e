"""Benchmark what per-resource policies cost a call's authorization.

Run:  .venv/bin/python bench/authz.py [--count N] [--rounds R] [--no-postgres]

1. The check every call makes (a cached `TokenStore.authenticate` then `allows(INVOKE,
   function:NAME)`, as the invoke fast path does): a developer, whose role covers it (the
   baseline: what every call cost before policies), against a citizen allowed by the last of 10
   policies (fnmatch patterns), alternated round by round in the same run.
2. A token's first call (a cache miss: the principal read from the store), without loading
   policies (the baseline) and with them (one more query), on SQLite and PostgreSQL.

Printed: JSON, medians over the rounds and each ratio. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import asyncpg  # noqa: E402

from ondo.backends.store import Store, open_store  # noqa: E402
from ondo.backends.store.repositories.policies import Policy  # noqa: E402
from ondo.backends.store.repositories.tokens import User  # noqa: E402
from ondo.security.policy import Permission, allows  # noqa: E402
from ondo.security.tokens import Principal, TokenStore  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
POLICIES = 10


async def _per_op_us(count: int, one: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await one()
    return (time.perf_counter() - started) / count * 1e6


async def _people(store: Store) -> tuple[str, str]:
    """A developer's token and a citizen's whose invoke comes from its last policy."""
    tokens = store.repos.tokens
    for name, role in (("dev", "developer"), ("cit", "citizen")):
        await tokens.put_user(User("bench", name, role, "user", 1.0, "bench"))  # type: ignore[arg-type]
    for i in range(POLICIES):
        pattern = f"function:report-{i}*" if i == POLICIES - 1 else f"function:other-{i}*"
        await store.repos.policies.add(
            Policy(f"pol_{i}", "bench", "cit", "invoke", pattern, 1.0, "bench")
        )
    issuer = TokenStore(tokens)
    dev = await issuer.issue(Principal("dev", "bench", "developer"), 1.0)
    cit = await issuer.issue(Principal("cit", "bench", "citizen"), 1.0)
    return dev.token, cit.token


async def cached_check(store: Store, count: int, rounds: int) -> dict[str, Any]:
    checker = TokenStore(store.repos.tokens, time.time, policies=store.repos.policies)
    dev, cit = await _people(store)
    resource = f"function:report-{POLICIES - 1}-daily"

    def check(token: str) -> Callable[[], Awaitable[object]]:
        async def one() -> None:
            principal = await checker.authenticate(token)
            assert principal is not None and allows(principal, Permission.INVOKE, resource)

        return one

    role, policy = [], []
    for _ in range(rounds):
        role.append(await _per_op_us(count, check(dev)))
        policy.append(await _per_op_us(count, check(cit)))
    return _pair("role_us", role, "policy_us", policy)


async def first_call(store: Store, count: int, rounds: int) -> dict[str, Any]:
    dev, _ = await _people(store)
    bare = TokenStore(store.repos.tokens)
    loaded = TokenStore(store.repos.tokens, policies=store.repos.policies)

    def miss(tokens: TokenStore) -> Callable[[], Awaitable[object]]:
        async def one() -> None:
            tokens.forget()
            assert await tokens.authenticate(dev) is not None

        return one

    without, with_policies = [], []
    for _ in range(rounds):
        without.append(await _per_op_us(count, miss(bare)))
        with_policies.append(await _per_op_us(count, miss(loaded)))
    return _pair("without_policies_us", without, "with_policies_us", with_policies)


def _pair(base: str, baseline: list[float], name: str, measured: list[float]) -> dict[str, Any]:
    a, b = statistics.median(baseline), statistics.median(measured)
    return {base: round(a, 2), name: round(b, 2), "ratio": round(b / a, 3)}


async def _on(url: str, cluster: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    store = open_store(url, cluster=cluster)
    await store.open()
    try:
        return await body(store)
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{Path(tmp) / 'ondo.db'}"
        out["cached_check"] = await _on(
            sqlite, "ondo", lambda s: cached_check(s, args.count, args.rounds)
        )
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{Path(tmp) / 'ondo.db'}"
        out["first_call_sqlite"] = await _on(
            sqlite, "ondo", lambda s: first_call(s, args.count // 10, args.rounds)
        )
    if not args.no_postgres:
        cluster = "bench_" + uuid.uuid4().hex[:8]
        try:
            out["first_call_postgres"] = await _on(
                POSTGRES, cluster, lambda s: first_call(s, args.count // 10, args.rounds)
            )
        finally:
            conn = await asyncpg.connect(POSTGRES)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{cluster}" CASCADE')
            finally:
                await conn.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
