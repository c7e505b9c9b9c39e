"""Long-poll support shared by the backends: park coroutines until the log grows.

`notify` may be called from any thread (the SQLite writer thread calls it after each commit); it
wakes each waiter on its own event loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

POLL_INTERVAL_S = 1.0  # re-check the log even without a wake-up (writers in another process)


class Waiters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[asyncio.Future[None]] = set()
        self.closed = False

    def notify(self, last_seq: int) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                future.get_loop().call_soon_threadsafe(_resolve, future)

    def close(self) -> None:
        self.closed = True
        self.notify(0)

    async def wait(self, after_seq: int, timeout: float, current: Callable[[], int]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while not self.closed and current() <= after_seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._pending.add(future)
            try:
                if current() > after_seq:  # appended between the check and the registration
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, POLL_INTERVAL_S)):
                        await future
            finally:
                with self._lock:
                    self._pending.discard(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
