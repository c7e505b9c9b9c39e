"""Shared by the hostile-function suite: a well-behaved function that must keep answering while
an attack runs beside it, in the same runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from ondo.runtime import FunctionSpec, ZygoteRuntime
from tests.functional.runtime.helpers import (
    HEALTHY,
    invoke,
    make_spec,
    processes_of_uid,
    result_of,
    write_function,
)

T = TypeVar("T")


def healthy_spec(root: Path) -> FunctionSpec:
    return make_spec(write_function(root, "healthy", HEALTHY), name="healthy")


async def healthy_answers(runtime: ZygoteRuntime, healthy: FunctionSpec, n: int = 0) -> None:
    assert result_of(await invoke(runtime, healthy, {"n": n}))["echo"] == {"n": n}


async def while_healthy_answers(
    runtime: ZygoteRuntime, healthy: FunctionSpec, attack: Awaitable[T]
) -> T:
    """Run `attack` while the healthy function is invoked over and over; each call must answer,
    during the attack (at least once) and after it."""
    running = asyncio.ensure_future(attack)
    answered = 0
    while not running.done():
        await healthy_answers(runtime, healthy, answered)
        answered += 1
        await asyncio.wait({running}, timeout=0.05)
    await healthy_answers(runtime, healthy, answered)
    return running.result()


def function_processes(runtime: ZygoteRuntime, spec: FunctionSpec) -> tuple[int, set[int]]:
    """The version's zygote pid and the pids of every live process of its host uid."""
    status = runtime.status()["functions"][spec.key]
    return int(status["zygote_pid"]), set(processes_of_uid(int(status["host_uid"])))


async def until_busy(runtime: ZygoteRuntime, spec: FunctionSpec, busy: int = 1) -> None:
    """Wait until `busy` invocations of the version run in their workers."""
    while runtime.status()["functions"].get(spec.key, {}).get("busy") != busy:
        await asyncio.sleep(0.01)
