"""The WAL of both SQLite files stays bounded: under writes that never stop, with another
process's reader coming and going, it is truncated back under its limit (a PASSIVE checkpoint
alone lets it grow for as long as the writes go on, and the file never shrinks)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ondo.backends.bus.sqlite import SqliteBus
from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.wal import wal_bytes
from ondo.events import CloudEvent

LIMIT = 1024 * 1024
MOST = 96 * LIMIT  # written at most while waiting for the WAL to shrink
PACE_S = 0.005  # between two writes of 256 KB: 50 MB/s at most, so checkpoints get a turn


@contextmanager
def reader(path: Path, sql: str) -> Iterator[None]:
    """Another connection reading all the time, each read a short transaction."""
    stop = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        while not stop.wait(0.001):
            conn.execute(sql).fetchall()
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def write_until_the_wal_shrinks(path: Path, write: Callable[[], int]) -> int:
    """Write without pause until the WAL file got smaller than it was (it was truncated while
    the writes went on); returns the bytes written (MOST if it never shrank)."""
    written, biggest = 0, 0
    while written < MOST:
        written += write()
        time.sleep(PACE_S)
        size = wal_bytes(path)
        if size < biggest:
            return written
        biggest = max(biggest, size)
    return written


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_store_wal_is_truncated_under_constant_writes(tmp_path: Path) -> None:
    path = tmp_path / "ondo.db"
    db = SqliteDatabase(path, background_checkpoint=True, wal_limit_bytes=LIMIT)
    db.execute("CREATE TABLE t (v BLOB)")
    row = b"x" * 8000

    def write() -> int:
        with db.transaction() as conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(row,)] * 32)
        return 32 * len(row)

    try:
        with reader(path, "SELECT COUNT(*) FROM t"):
            assert write_until_the_wal_shrinks(path, write) < MOST
            assert wait_until(lambda: wal_bytes(path) <= LIMIT), wal_bytes(path)
    finally:
        db.close()


async def read_all_the_time(bus: SqliteBus) -> None:
    """The bus's own reader (what the dispatcher and the API use), back to back."""
    while True:
        await bus.read(0, limit=10)
        await asyncio.sleep(0)


def test_the_bus_wal_is_truncated_under_constant_appends(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    counter = iter(range(10**9))

    async def scenario() -> None:
        bus = SqliteBus(path, synchronous="normal", wal_limit_bytes=LIMIT)

        def write() -> int:
            events = [
                CloudEvent(source="/s", type="t", id=str(next(counter)), data={"pad": "x" * 8000})
                for _ in range(32)
            ]
            asyncio.run_coroutine_threadsafe(bus.append(events), loop).result()
            return 32 * 8000

        loop = asyncio.get_running_loop()
        try:
            with reader(path, "SELECT seq FROM events ORDER BY seq DESC LIMIT 10"):
                reading = asyncio.create_task(read_all_the_time(bus))
                written = await asyncio.to_thread(write_until_the_wal_shrinks, path, write)
                reading.cancel()
                assert written < MOST
                # The writer checks after its commits: one more append after the writes stop.
                await asyncio.to_thread(
                    wait_until, lambda: write() > 0 and wal_bytes(path) <= LIMIT
                )
                assert wal_bytes(path) <= LIMIT
        finally:
            await bus.close()

    asyncio.run(scenario())
