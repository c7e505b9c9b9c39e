"""The window state machines over a real store (SQLite and PostgreSQL): counts, throttles,
timers, and state that survives reopening the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ondo.backends.store import Store
from ondo.rules import windows
from tests.unit.store.conftest import StoreFactory

RULE = "default/r"


def run(make_store: StoreFactory, body: Callable[[Store], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


async def _count(store: Store, key: str, uid: str, now: float) -> windows.CountResult:
    async with store.transaction() as uow:
        return await windows.count(uow.windows, RULE, key, uid, now, threshold=3, within_s=100.0)


def test_count_fires_on_the_nth_event_then_starts_again(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        results = [await _count(store, "k", f"e{i}", 10.0 + i) for i in range(7)]
        assert [r.reached for r in results] == [False, False, True, False, False, True, False]
        assert [r.count for r in results] == [1, 2, 3, 1, 2, 3, 1]

    run(make_store, body)


def test_count_is_a_sliding_window(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await _count(store, "k", "a", 0.0)
        await _count(store, "k", "b", 50.0)
        late = await _count(store, "k", "c", 100.0)  # "a" is exactly 100 s old: out of the window
        assert (late.count, late.reached) == (2, False)
        assert (await _count(store, "k", "d", 120.0)).reached

    run(make_store, body)


def test_count_keys_are_separate(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        for i in range(2):
            await _count(store, "alice", f"a{i}", float(i))
            await _count(store, "bob", f"b{i}", float(i))
        assert (await _count(store, "alice", "a2", 5.0)).reached
        assert not (await _count(store, "carol", "c0", 5.0)).reached
        assert (await _count(store, "bob", "b2", 5.0)).reached

    run(make_store, body)


def test_the_same_event_counts_once(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await _count(store, "k", "same", 1.0)
        assert (await _count(store, "k", "same", 2.0)).count == 1

    run(make_store, body)


def test_counts_survive_reopening_the_store(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await _count(store, "k", "a", 1.0)
        await _count(store, "k", "b", 2.0)
        await store.close()
        again = await make_store()
        try:
            assert (await _count(again, "k", "c", 3.0)).reached
        finally:
            await again.close()

    run(make_store, body)


def test_throttle_allows_once_per_period_per_key(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async def allows(key: str, now: float) -> bool:
            async with store.transaction() as uow:
                return (await windows.throttle_allows(uow.windows, RULE, key, now, per_s=60.0))[0]

        assert await allows("k", 0.0)
        assert not await allows("k", 59.9)
        assert await allows("other", 30.0)
        assert await allows("k", 60.0)
        assert not await allows("k", 100.0)  # a suppressed firing does not move the period

    run(make_store, body)


def test_timer_starts_once_per_key_and_comes_due(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async with store.transaction() as uow:
            first, started = await windows.start_timer(
                uow.windows, RULE, "k", 10.0, 600.0, {"id": "1"}
            )
            again, started_again = await windows.start_timer(
                uow.windows, RULE, "k", 20.0, 600.0, {"id": "2"}
            )
        assert started and not started_again
        assert again.id == first.id and again.due_at == 610.0 and again.event == {"id": "1"}
        repo = store.repos.windows
        assert await repo.due_timers(609.0) == []
        assert [t.id for t in await repo.due_timers(610.0)] == [first.id]
        await repo.set_timer_status(first.id, "fired")
        assert await repo.due_timers(1000.0) == []
        assert await repo.next_due() is None

    run(make_store, body)


def test_cancel_removes_the_pending_timer_only(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async with store.transaction() as uow:
            repo = uow.windows
            await windows.start_timer(repo, RULE, "a", 0.0, 10.0, {"id": "1"})
            await windows.start_timer(repo, RULE, "b", 0.0, 20.0, {"id": "2"})
            cancelled = await windows.cancel_timer(repo, RULE, "a")
            assert cancelled is not None and cancelled.event == {"id": "1"}
            assert await windows.cancel_timer(repo, RULE, "a") is None
            assert await repo.next_due() == 20.0
            # a cancelled key can start a fresh timer
            fresh, started = await windows.start_timer(repo, RULE, "a", 5.0, 10.0, {"id": "3"})
            assert started and fresh.due_at == 15.0

    run(make_store, body)


def test_forget_rule_drops_all_state(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await _count(store, "k", "a", 1.0)
        async with store.transaction() as uow:
            await windows.throttle_allows(uow.windows, RULE, "", 1.0, 60.0)
            await windows.start_timer(uow.windows, RULE, "k", 1.0, 10.0, {"id": "1"})
            await uow.windows.forget_rule(RULE)
        state = await store.repos.windows.state(RULE)
        assert state.to_json() == {"counts": {}, "last_fired": {}, "pending_timers": []}

    run(make_store, body)
