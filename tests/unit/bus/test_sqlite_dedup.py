"""The SQLite log forgets expired dedup keys a bounded number at a time, oldest first, and
catches up over the next commits whatever the backlog."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from ondo.backends.bus import sqlite as sqlite_bus
from ondo.backends.bus.sqlite import SqliteBus
from ondo.events import CloudEvent


def keys(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM dedup ORDER BY received_at, id")]
    finally:
        conn.close()


def test_expired_dedup_keys_go_in_bounded_steps(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    path = tmp_path / "bus.db"
    limit = sqlite_bus.DEDUP_PRUNE_LIMIT

    async def scenario() -> None:
        bus = SqliteBus(path, dedup_window_s=60.0, clock=lambda: now[0])
        try:
            old = [CloudEvent(source="/s", type="t", id=f"old-{n:05}") for n in range(limit + 5)]
            await bus.append(old)
            now[0] += 120.0  # every key above is past the 60 s window
            await bus.append([CloudEvent(source="/s", type="t", id="new-1")])
            assert len(keys(path)) == 5 + 1  # one full batch went, oldest first
            await bus.append([CloudEvent(source="/s", type="t", id="new-2")])
            assert keys(path) == ["new-1", "new-2"]  # the next commit caught up at once
        finally:
            await bus.close()

    asyncio.run(scenario())


def test_ids_of_any_text_are_found_again_when_a_batch_is_looked_up_at_once(
    tmp_path: Path,
) -> None:
    """A batch's ids travel to SQLite as one JSON array: escapes must come back as written."""
    ids = ["😀-1", "a\nb", 'q"\\', "é", "\x01", "e1"]

    async def scenario() -> None:
        bus = SqliteBus(tmp_path / "bus.db")
        try:
            first = await bus.append([CloudEvent(source="/s", type="t", id=i) for i in ids])
            again = await bus.append([CloudEvent(source="/s", type="t", id=i) for i in ids])
            assert [r.duplicate for r in first] == [False] * len(ids)
            assert [(r.seq, r.duplicate) for r in again] == [(r.seq, True) for r in first]
        finally:
            await bus.close()

    asyncio.run(scenario())
