"""The dispatch step writes the store's event index when the bus asks for it, and only then."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ondo.backends.bus import StoredEvent, open_bus
from ondo.backends.store import open_store
from ondo.events import CloudEvent
from ondo.rules.engine import RuleEngine
from tests.unit.bus.indexed import indexing_engine


def stored(seq: int, type: str) -> StoredEvent:
    return StoredEvent(seq, CloudEvent(id=f"e{seq}", source="/s", type=type), 100.0 + seq)


def run(tmp_path: Path, index_events: bool) -> tuple[list[int], int]:
    """(seqs indexed, decisions recorded) after dispatching three events, one a rule decides on."""

    async def main() -> tuple[list[int], int]:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        bus = open_bus("memory://")
        engine: RuleEngine = indexing_engine(store, bus)
        engine.index_events = index_events
        try:
            await engine.start()
            book = engine.book
            rule = book.prepare(
                "default", "admin", name="r", text="on hit 3 times within 1h do emit pong"
            )
            await book.add(rule, replace_existing=True)
            batch = [stored(1, "other"), stored(2, "hit"), stored(3, "other")]
            decided = await engine.dispatch_now(batch)
            await engine.dispatch_now(batch)  # re-delivered: nothing new
            index = store.repos.event_index
            seqs = [seq for n in (1, 2, 3) for seq in await index.seqs_by_id(f"e{n}", None, 9)]
            return seqs, len(decided)
        finally:
            await engine.stop()
            await bus.close()
            await store.close()

    return asyncio.run(main())


def test_every_event_of_a_chunk_is_indexed_with_its_decisions(tmp_path: Path) -> None:
    assert run(tmp_path, index_events=True) == ([1, 2, 3], 1)


def test_nothing_is_indexed_unless_the_bus_asks(tmp_path: Path) -> None:
    assert run(tmp_path, index_events=False) == ([], 1)
