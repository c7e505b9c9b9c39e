"""The event index repository's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ondo.backends.store import Repositories, Store
from ondo.backends.store.repositories.events import IndexedEvent
from tests.unit.store.conftest import StoreFactory


def row(seq: int, id: str = "e1", source: str = "/s", namespace: str = "default") -> IndexedEvent:
    return IndexedEvent(namespace, source, id, seq, "t.happened", 1000.0 + seq)


def run(make_store: StoreFactory, body: Callable[[Store], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_lookups_by_event_and_by_id_give_seqs_lowest_first(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        index = store.repos.event_index
        assert await index.highest_seq() == 0
        assert await index.seqs_of("default", "/s", "e1", 10) == []
        await index.add([row(5), row(2, source="/b"), row(3, namespace="team-a"), row(9)])
        await index.add([row(4, id="e2")])
        assert await index.seqs_of("default", "/s", "e1", 10) == [5, 9]
        assert await index.seqs_of("default", "/s", "e1", 1) == [5]
        assert await index.seqs_of("default", "/b", "e1", 10) == [2]
        assert await index.seqs_of("team-a", "/b", "e1", 10) == []
        assert await index.seqs_by_id("e1", None, 10) == [2, 3, 5, 9]
        assert await index.seqs_by_id("e1", "team-a", 10) == [3]
        assert await index.seqs_by_id("e1", None, 2) == [2, 3]
        assert await index.seqs_by_id("nope", None, 10) == []
        assert await index.highest_seq() == 9

    run(make_store, body)


def test_writing_a_seq_again_changes_nothing_unless_it_names_another_event(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        index = store.repos.event_index
        await index.add([row(1), row(2)])
        await index.add([row(1), row(2), row(3)])  # a re-delivered chunk
        assert await index.seqs_by_id("e1", None, 10) == [1, 2, 3]
        await index.add([row(2, id="other")])  # the log was reset: seq 2 is another event
        assert await index.seqs_by_id("e1", None, 10) == [1, 3]
        assert await index.seqs_by_id("other", None, 10) == [2]

    run(make_store, body)


def test_rows_commit_with_the_unit_of_work_or_not_at_all(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async def fails(uow: Repositories) -> None:
            await uow.event_index.add([row(1)])
            raise RuntimeError("the decision failed")

        with pytest.raises(RuntimeError, match="the decision failed"):
            await store.atomic(fails)
        assert await store.repos.event_index.highest_seq() == 0

        async def works(uow: Repositories) -> None:
            await uow.event_index.add([row(n) for n in range(1, 251)])  # several INSERTs

        await store.atomic(works)
        assert await store.repos.event_index.highest_seq() == 250

    run(make_store, body)


def test_prune_deletes_the_oldest_received_in_batches(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        index = store.repos.event_index
        await index.add([row(n, id=f"e{n}") for n in range(1, 8)])  # received 1001 … 1007
        assert await index.prune(1006.0, 2) == 2
        assert await index.seqs_by_id("e1", None, 10) == []
        assert await index.seqs_by_id("e3", None, 10) == [3]
        assert await index.prune(1006.0, 2) == 2
        assert await index.prune(1006.0, 2) == 1  # fewer than the limit: nothing left
        assert await index.prune(1006.0, 2) == 0
        assert [await index.seqs_by_id(f"e{n}", None, 10) for n in (6, 7)] == [[6], [7]]

    run(make_store, body)
