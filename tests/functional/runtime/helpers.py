"""Real sandboxed functions for runtime tests: handler files in a tmp dir, a started runtime."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from ondo.runtime import FunctionSpec, InvocationOutcome, SandboxOptions, ZygoteRuntime

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def write_function(root: Path, name: str, source: str, module: str = "app") -> Path:
    """A code dir holding `<module>.py` with `source`; returns the dir."""
    code_dir = root / "code" / name
    (code_dir / Path(*module.split(".")[:-1])).mkdir(parents=True, exist_ok=True)
    (code_dir / (module.replace(".", "/") + ".py")).write_text(textwrap.dedent(source))
    return code_dir


def make_spec(code_dir: Path, name: str = "fn", **overrides: Any) -> FunctionSpec:
    values: dict[str, Any] = {
        "namespace": "default",
        "name": name,
        "version": 1,
        "code_dir": code_dir,
        "handler": "app.handler",
        "timeout_s": 5.0,
        "memory_mb": 128,
        "concurrency": 4,
        "network": False,
        "environment": {},
        "layer_dir": None,
    }
    values.update(overrides)
    return FunctionSpec(**values)


@asynccontextmanager
async def started(
    idle_ttl_s: float = 60.0, spare_workers: int = 0, **options: Any
) -> AsyncIterator[ZygoteRuntime]:
    """A started runtime; no spare workers unless asked, so tests can count processes."""
    runtime = ZygoteRuntime(
        idle_ttl_s=idle_ttl_s, sandbox=SandboxOptions(**options), spare_workers=spare_workers
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.close(grace_s=1.0)


async def invoke(
    runtime: ZygoteRuntime, spec: FunctionSpec, event: Any = None, request_id: str = "req-1"
) -> InvocationOutcome:
    return await runtime.invoke(
        spec, json.dumps(event if event is not None else {}).encode(), request_id
    )


def result_of(outcome: InvocationOutcome) -> Any:
    assert outcome.status == "succeeded", (outcome.error, outcome.logs)
    assert outcome.result is not None
    return json.loads(outcome.result)


def processes_of_uid(uid: int) -> list[int]:
    """Pids of live (not zombie) processes running as host uid `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append(int(entry))
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


SLEEPER = """
    import time
    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return "done"
"""

HEALTHY = """
    def handler(event, context):
        return {"ok": True, "echo": event}
"""
