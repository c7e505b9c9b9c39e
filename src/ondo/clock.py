"""Time as the platform sees it: the wall clock, or a manual one that tests advance."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until `seconds` of this clock's time have passed (or a manual advance)."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when `advance` is called; sleepers wake on every advance."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        self._moved.set()
        self._moved = asyncio.Event()
        return self._now

    async def sleep(self, seconds: float) -> None:
        # Wake on advance or after a short real delay, so callers re-check their deadlines.
        moved = self._moved
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(max(seconds, 0.0), 0.05) or 0.001):
                await moved.wait()
