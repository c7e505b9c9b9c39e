"""Time as the platform sees it: the wall clock, or a manual one that tests advance."""

from __future__ import annotations

import asyncio
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
        self._sleepers: set[asyncio.Future[None]] = set()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        for sleeper in self._sleepers:
            _wake(sleeper)
        self._sleepers.clear()
        return self._now

    async def sleep(self, seconds: float) -> None:
        # Wake on advance or after a short real delay, so callers re-check their deadlines. A
        # plain future and a timer rather than asyncio.timeout: on Python 3.11 a cancellation
        # that lands as the timeout expires could be turned into the TimeoutError it suppressed,
        # and the cancelled task slept on (a source's stop then waited for ever).
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        self._sleepers.add(sleeper)
        timer = loop.call_later(min(max(seconds, 0.0), 0.05) or 0.001, _wake, sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
