"""Benchmark "function tokens": what a function's per-invocation identity costs.

Run:  .venv/bin/python bench/function_tokens.py [--count N] [--rounds R] [--no-postgres]

1. One token's life, issue then check (`FunctionTokens.issue` + `TokenStore.authenticate`, an
   HMAC each way), against the baseline of a stored token (`TokenStore.issue`, an insert, then
   `authenticate` by a fresh TokenStore, a read) on SQLite and PostgreSQL: what signing instead
   of storing saves per invocation. Alternated round by round, in the same run.
2. A warm invocation through the sandboxed runtime (`ZygoteRuntime.invoke`, the handler reads
   `context.ondo_token`) with a token issued and handed over, against the same invocation
   without one, alternated round by round: what the handover adds to an invocation.

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

from ondo.backends.store import Store, open_store  # noqa: E402
from ondo.runtime.base import CallerIdentity, FunctionSpec  # noqa: E402
from ondo.runtime.runtime import ZygoteRuntime  # noqa: E402
from ondo.security.function_tokens import FunctionTokens, scope_of  # noqa: E402
from ondo.security.tokens import Principal, TokenStore  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SCOPE = scope_of(["reading.*", "alert.raised"], ["report"])
HANDLER = """
def handler(event, context):
    return {"n": event["n"], "has": bool(context.ondo_token)}
"""


async def _per_op_us(count: int, one: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for i in range(count):
        await one(i)
    return (time.perf_counter() - started) / count * 1e6


async def token_life(store: Store, count: int, rounds: int) -> dict[str, Any]:
    signed = FunctionTokens(time.time)
    await signed.load(store.repos.platform_keys)
    checker = TokenStore(store.repos.tokens, time.time, signed)

    async def signed_one(i: int) -> None:
        token = signed.issue("bench", "fn", 1, f"inv-{i}", SCOPE, 30.0)
        assert await checker.authenticate(token) is not None

    async def stored_one(i: int) -> None:
        issued = await checker.issue(Principal(f"p{i}", "bench"), time.time())
        fresh = TokenStore(store.repos.tokens, time.time)  # nothing cached: the store reads
        assert await fresh.authenticate(issued.token) is not None

    signed_us, stored_us = [], []
    for _ in range(rounds):
        signed_us.append(await _per_op_us(count, signed_one))
        stored_us.append(await _per_op_us(count, stored_one))
    s, b = statistics.median(signed_us), statistics.median(stored_us)
    return {
        "signed_issue_and_check_us": round(s, 2),
        "stored_issue_and_check_us": round(b, 2),
        "stored_over_signed": round(b / s, 1),
    }


async def on_store(url: str, cluster: str, count: int, rounds: int) -> dict[str, Any]:
    store = open_store(url, cluster=cluster)
    await store.open()
    try:
        return await token_life(store, count, rounds)
    finally:
        await store.close()


async def handover(code_dir: Path, count: int, rounds: int) -> dict[str, Any]:
    runtime = ZygoteRuntime()
    await runtime.start()
    spec = FunctionSpec("bench", "fn", 1, code_dir, "app.handler", timeout_s=10.0)
    signed = FunctionTokens(time.time)
    signed._key = b"k" * 32  # no store needed to sign here
    try:

        async def plain(n: int) -> None:
            outcome = await runtime.invoke(spec, json.dumps({"n": n}).encode(), f"p{n}")
            assert outcome.status == "succeeded" and outcome.value == {"n": n, "has": False}

        async def with_token(n: int) -> None:
            token = signed.issue("bench", "fn", 1, f"t{n}", SCOPE, spec.timeout_s)
            identity = CallerIdentity(token, "http://127.0.0.1:8080")
            payload = json.dumps({"n": n}).encode()
            outcome = await runtime.invoke(spec, payload, f"t{n}", identity)
            assert outcome.status == "succeeded" and outcome.value == {"n": n, "has": True}

        for n in range(100):  # warm the worker and both paths
            await plain(n)
            await with_token(n)
        plain_us, token_us = [], []
        for _ in range(rounds):
            plain_us.append(await _per_op_us(count, plain))
            token_us.append(await _per_op_us(count, with_token))
    finally:
        await runtime.close()
    p, t = statistics.median(plain_us), statistics.median(token_us)
    return {
        "invoke_without_token_us": round(p, 1),
        "invoke_with_token_us": round(t, 1),
        "with_over_without": round(t / p, 3),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"count": args.count, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out["tokens_sqlite"] = await on_store(
            f"sqlite:///{root / 'ondo.db'}", "ondo", args.count, args.rounds
        )
        if not args.no_postgres:
            cluster = f"bench_{uuid.uuid4().hex[:8]}"
            try:
                out["tokens_postgres"] = await on_store(POSTGRES, cluster, args.count, args.rounds)
            finally:
                import asyncpg

                conn = await asyncpg.connect(POSTGRES)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{cluster}" CASCADE')
                await conn.close()
        code = root / "code"
        code.mkdir()
        (code / "app.py").write_text(HANDLER)
        out["handover"] = await handover(code, args.count, args.rounds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
