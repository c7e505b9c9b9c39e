"""Cancellation must never be lost: a cancelled invocation, long-poll or shutdown stops.

On Python 3.11, `asyncio.wait_for` returns the awaited result instead of raising
CancelledError when the cancellation arrives in the same loop iteration as the result
(fixed in 3.12). A cold start cancelled as its zygote reported ready then ran to completion
(tests/functional/runtime/test_invoke.py::test_a_cancelled_invocation_frees_its_slot failed
that way under load). `asyncio.timeout` has no such window, so the platform uses only it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ondo"
WAIT_FOR = re.compile(r"\basyncio\.wait_for\(|\bfrom asyncio import [^\n]*\bwait_for\b")


def test_the_platform_never_uses_asyncio_wait_for() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WAIT_FOR.search(line)
    ]
    assert offenders == [], f"use `async with asyncio.timeout(...)` instead at {offenders}"


def test_a_timeout_block_raises_a_cancellation_that_races_the_result() -> None:
    """The property the rule above relies on, shown with asyncio.timeout itself."""

    async def scenario() -> bool:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def waiter() -> str:
            async with asyncio.timeout(10):
                return await asyncio.shield(ready)

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)  # the waiter is parked on `ready`
        ready.set_result("ready")  # the result and the cancellation land in one iteration
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario())
