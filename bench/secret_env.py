"""Benchmark "secrets": what declaring a secret costs a warm invocation, and what masking costs.

Run:  .venv/bin/python bench/secret_env.py [--invocations N] [--rounds R]

1. Warm sync invocations through the FunctionService (real zygotes and sandboxes, SQLite store,
   no HTTP), one at a time: a function that declares a secret (its value in the environment,
   and the function's logs, error and result masked before they are recorded) against the same
   handler declaring none, measured in the same run and alternated round by round. The ratio
   is what secrets add to an invocation.
2. The masking alone (`_masked_record`) on a record with 1 KiB of logs, and on one with 64 KiB
   (the log capture's limit), in µs.

Printed: JSON, medians over the rounds. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ondo.backends.store import open_store
from ondo.clock import WallClock
from ondo.functions.bundle import CodeStore
from ondo.functions.model import FunctionConfig, InvocationRecord
from ondo.functions.secretenv import redaction_of
from ondo.functions.service import FunctionService, _masked_record
from ondo.metrics import Metrics
from ondo.runtime import SandboxOptions, ZygoteRuntime
from ondo.security.secretbox import new_key_text, parse_keys
from ondo.security.secrets import Secrets

VALUE = "bench-secret-value-0123456789"
HANDLER = """
import os

def handler(event, context):
    print("working on", event.get("n"))
    return {"ok": True, "n": event.get("n"), "len": len(os.environ.get("DB_PASSWORD", ""))}
"""


async def _rate(service: FunctionService, name: str, count: int) -> float:
    """Invocations per second of `count` sequential warm invocations of `name`."""
    start = time.perf_counter()
    for n in range(count):
        record = await service.invoke(name, json.dumps({"n": n}).encode())
        assert record.status == "succeeded", record
    return count / (time.perf_counter() - start)


async def warm_invocations(root: Path, count: int, rounds: int) -> dict[str, Any]:
    store = open_store(f"sqlite:///{root / 'ondo.db'}")
    await store.open()
    runtime = ZygoteRuntime(sandbox=SandboxOptions(), spare_workers=0)
    await runtime.start()
    keys = parse_keys(new_key_text(), "bench")
    secrets = Secrets(store, lambda: keys, time.time)
    code = CodeStore(root / "code")
    service = FunctionService(
        store, runtime, code, root / "layers", WallClock(), Metrics(), secrets
    )
    secrets.on_change(service.secret_changed)
    secrets.watch()
    await service.start()
    try:
        (root / "src").mkdir()
        (root / "src" / "app.py").write_text(HANDLER)
        code_hash = code.add(root / "src")
        await secrets.put("default", "DB_PASSWORD", VALUE.encode(), "bench")
        await service.publish("plain", FunctionConfig(concurrency=1), code_hash, None)
        declared = FunctionConfig(concurrency=1, secrets=("DB_PASSWORD",))
        await service.publish("secret", declared, code_hash, None)
        for name in ("plain", "secret"):
            await _rate(service, name, 50)  # warm: the worker forked, the value cached
        plain, secret = [], []
        for index in range(rounds):  # who goes first alternates too: no order effect
            order = [("plain", plain), ("secret", secret)]
            for name, rates in order if index % 2 == 0 else reversed(order):
                rates.append(await _rate(service, name, count))
        return {
            "invocations_per_round": count,
            "rounds": rounds,
            "plain_per_s": round(statistics.median(plain), 1),
            "with_secret_per_s": round(statistics.median(secret), 1),
            "ratio": round(statistics.median(secret) / statistics.median(plain), 3),
        }
    finally:
        await service.drain(1.0)
        service.close()
        secrets.close()
        await runtime.close(grace_s=1.0)
        await store.close()


def masking_us(log_bytes: int, repeat: int = 2000) -> float:
    """µs to mask one record whose logs hold `log_bytes` and the value twice."""
    line = "working on it, all fine here\n"
    logs = (line * (log_bytes // len(line)))[: log_bytes - 2 * len(VALUE)] + VALUE + VALUE
    record = InvocationRecord(
        "id",
        "default",
        "f",
        1,
        "failed",
        "sync",
        0.0,
        error={"errorMessage": f"refused {VALUE}", "errorType": "E", "stackTrace": ["a", "b"]},
        result={"n": 1, "ok": True},
        logs=logs,
    )
    masked = redaction_of([VALUE])
    start = time.perf_counter()
    for _ in range(repeat):
        _masked_record(record, masked)
    return round((time.perf_counter() - start) / repeat * 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ondo-bench-secrets-") as tmp:
        warm = asyncio.run(warm_invocations(Path(tmp), args.invocations, args.rounds))
    out = {"warm_invocations": warm, "masking_us": {"1KiB": masking_us(1024)}}
    out["masking_us"]["64KiB"] = masking_us(64 * 1024)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
