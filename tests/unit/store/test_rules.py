"""The rules repositories' contract, on SQLite and PostgreSQL: definitions, window state,
timers, enforcement records and skipped events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from ondo.backends.store import Repositories, Store
from ondo.backends.store.repositories.rules import (
    Enforcement,
    PlannedAction,
    SkippedEvent,
    StoredRule,
)
from ondo.errors import DuplicateKey, StoreConflict
from tests.unit.store.conftest import StoreFactory

RULE = "default/r"
PING = StoredRule("default", "ping", "admin", "on ping do emit pong", {"pattern": {"a": 1}})


def run(make_store: StoreFactory, body: Callable[[Store], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def _record(rule: str = "ping", event_id: str = "e1", at: float = 1.0, **kw: object) -> Enforcement:
    fields: dict[str, object] = {
        "id": f"enf-{rule}-{event_id}-{kw.get('stage', 'event')}",
        "namespace": "default",
        "rule": rule,
        "stage": "event",
        "event_source": "src",
        "event_id": event_id,
        "event_type": "ping",
        "at": at,
        "outcome": "fired",
        "detail": "actions enqueued",
        "actions": (PlannedAction(0, "emit", "pong", "k0"),),
    }
    fields.update(kw)
    return Enforcement(**fields)  # type: ignore[arg-type]


# --- definitions -------------------------------------------------------------------------------


def test_a_rule_is_stored_read_and_replaced_keeping_its_creation_time(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        rules = store.repos.rules
        assert await rules.find("default", "ping") is None
        first = await rules.put(PING, 10.0)
        assert (first.created_at, first.updated_at) == (10.0, 10.0)
        assert await rules.find("default", "ping") == first
        changed = replace(PING, text="on ping do emit pang", app="shop", enabled=False)
        second = await rules.put(changed, 20.0)
        assert (second.created_at, second.updated_at) == (10.0, 20.0)
        found = await rules.find("default", "ping")
        assert found == second and found is not None and found.app == "shop"
        assert not found.enabled and found.spec == {"pattern": {"a": 1}}

    run(make_store, body)


def test_rules_are_listed_by_namespace_and_app(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        rules = store.repos.rules
        await rules.put(replace(PING, name="b", app="shop"), 1.0)
        await rules.put(replace(PING, name="a", app="shop"), 1.0)
        await rules.put(replace(PING, name="c"), 1.0)
        await rules.put(replace(PING, namespace="other", name="a", app="shop"), 1.0)
        assert [r.name for r in await rules.in_namespace("default")] == ["a", "b", "c"]
        assert [r.rule_id for r in await rules.all()] == [
            "default/a",
            "default/b",
            "default/c",
            "other/a",
        ]
        assert await rules.names_of_app("default", "shop") == ["a", "b"]
        assert await rules.names_of_app("default", "none") == []

    run(make_store, body)


def test_enable_disable_keeps_the_reason_and_delete_says_if_it_found_the_rule(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        rules = store.repos.rules
        await rules.put(PING, 1.0)
        assert await rules.set_enabled("default", "ping", False, 2.0, "it failed")
        found = await rules.find("default", "ping")
        assert found is not None and not found.enabled
        assert (found.disabled_reason, found.updated_at) == ("it failed", 2.0)
        assert await rules.set_enabled("default", "ping", True, 3.0)
        found = await rules.find("default", "ping")
        assert found is not None and found.enabled and found.disabled_reason is None
        assert not await rules.set_enabled("default", "nope", True, 3.0)
        assert await rules.delete("default", "ping")
        assert not await rules.delete("default", "ping")
        assert await rules.find("default", "ping") is None

    run(make_store, body)


# --- windows -----------------------------------------------------------------------------------


def test_counts_slide_count_each_event_once_and_reset(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        windows = store.repos.windows
        assert await windows.add_count(RULE, "k", "a", 0.0, -100.0) == 1
        assert await windows.add_count(RULE, "k", "b", 50.0, -50.0) == 2
        assert await windows.add_count(RULE, "k", "b", 51.0, -49.0) == 2  # the same event
        assert await windows.add_count(RULE, "other", "c", 60.0, -40.0) == 1
        # "a" is exactly as old as the window: no longer counted
        assert await windows.add_count(RULE, "k", "d", 100.0, 0.0) == 2
        assert (await windows.state(RULE)).counts == {"k": 2, "other": 1}
        await windows.reset_count(RULE, "k")
        assert (await windows.state(RULE)).counts == {"other": 1}
        assert await windows.add_count(RULE, "k", "e", 101.0, 1.0) == 1

    run(make_store, body)


def test_throttles_remember_the_last_firing_per_key(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        windows = store.repos.windows
        assert await windows.last_fired(RULE, "k") is None
        await windows.set_last_fired(RULE, "k", 10.0)
        await windows.set_last_fired(RULE, "k", 70.0)
        await windows.set_last_fired(RULE, "j", 5.0)
        assert await windows.last_fired(RULE, "k") == 70.0
        assert (await windows.state(RULE)).last_fired == {"j": 5.0, "k": 70.0}

    run(make_store, body)


def test_timers_one_pending_per_key_fall_due_in_order(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        windows = store.repos.windows
        first = await windows.add_timer(RULE, "a", 0.0, 20.0, {"id": "1", "data": {"x": [1]}})
        second = await windows.add_timer(RULE, "b", 0.0, 10.0, {"id": "2"})
        with pytest.raises(DuplicateKey):
            async with store.transaction() as uow:
                await uow.windows.add_timer(RULE, "a", 1.0, 30.0, {"id": "3"})
        assert await windows.pending_timer(RULE, "a") == first
        assert await windows.pending_timer(RULE, "c") is None
        assert await windows.next_due() == 10.0
        assert await windows.due_timers(9.0) == []
        assert [t.id for t in await windows.due_timers(20.0)] == [second.id, first.id]
        assert [t.id for t in await windows.due_timers(20.0, limit=1)] == [second.id]
        await windows.set_timer_status(second.id, "fired")
        await windows.set_timer_status(first.id, "cancelled")
        assert await windows.due_timers(100.0) == [] and await windows.next_due() is None
        again = await windows.add_timer(RULE, "a", 5.0, 15.0, {"id": "4"})  # a fresh one
        assert again.id not in (first.id, second.id)
        state = await windows.state(RULE)
        assert [(t.key, t.due_at, t.event) for t in state.pending_timers] == [
            ("a", 15.0, {"id": "4"})
        ]

    run(make_store, body)


def test_forgetting_a_rule_drops_its_state_and_no_other(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async with store.transaction() as uow:
            for rule in (RULE, "default/other"):
                await uow.windows.add_count(rule, "k", "a", 1.0, 0.0)
                await uow.windows.set_last_fired(rule, "", 1.0)
                await uow.windows.add_timer(rule, "k", 1.0, 10.0, {"id": "1"})
            await uow.windows.forget_rule(RULE)
        empty = await store.repos.windows.state(RULE)
        assert empty.to_json() == {"counts": {}, "last_fired": {}, "pending_timers": []}
        kept = await store.repos.windows.state("default/other")
        assert kept.counts == {"k": 1} and len(kept.pending_timers) == 1

    run(make_store, body)


# --- enforcement records and skipped events ----------------------------------------------------


def test_a_decision_is_recorded_once_and_read_by_event_and_rule(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        log = store.repos.enforcements
        first = _record()
        await log.add(first)
        await log.add(_record(event_id="e2", at=2.0, outcome="counted", actions=()))
        await log.add(_record(rule="other", at=0.5, stage="timer"))
        with pytest.raises(DuplicateKey):
            await log.add(replace(first, id="enf-another"))
        assert await log.find("default", "ping", "event", "src", "e1") == first
        assert await log.find("default", "ping", "timer", "src", "e1") is None
        assert [(r.rule, r.stage) for r in await log.for_event("e1")] == [
            ("other", "timer"),
            ("ping", "event"),
        ]
        assert await log.for_event("e1", "elsewhere") == []
        assert [r.event_id for r in await log.for_rule("default", "ping")] == ["e2", "e1"]
        assert [r.event_id for r in await log.for_rule("default", "ping", limit=1)] == ["e2"]

    run(make_store, body)


def test_a_chunks_decisions_are_found_in_one_call_and_added_in_one(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        log = store.repos.enforcements
        taken = [
            _record(),
            _record(rule="other"),
            _record(event_id="e2", event_source="elsewhere"),
            _record(event_id="e1", stage="timer"),
        ]
        await log.add_many(taken)
        wanted = [("default", "ping", "src", "e1"), ("default", "other", "src", "e1")]
        wanted += [("default", "ping", "elsewhere", "e2"), ("default", "ping", "src", "e2")]
        wanted += [("ns2", "ping", "src", "e1"), ("default", "ping", "src", "e1")]  # again
        found = await log.find_many("event", wanted)
        assert found == {rec.key: rec for rec in taken[:3]}
        assert await log.find_many("timer", wanted) == {taken[3].key: taken[3]}
        assert await log.find_many("event", []) == {}
        # More keys than one statement takes, each chunk padded to its size.
        many = [_record(event_id=f"m{n}") for n in range(300)]
        await log.add_many(many)
        keys = [rec.key for rec in many] + [("default", "ping", "src", f"x{n}") for n in range(9)]
        assert await log.find_many("event", keys) == {rec.key: rec for rec in many}

    run(make_store, body)


def test_adding_a_chunk_with_a_decision_taken_before_keeps_none_of_it(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        await store.repos.enforcements.add(_record(event_id="e2"))

        async def chunk(uow: Repositories) -> None:
            await uow.enforcements.add_many(
                [_record(event_id="e1"), _record(event_id="e2", id="x")]
            )

        with pytest.raises(DuplicateKey):
            await store.atomic(chunk)
        assert await store.repos.enforcements.find("default", "ping", "event", "src", "e1") is None

    run(make_store, body)


def test_two_chunks_deciding_one_event_at_once_conflict_and_the_loser_may_retry(
    make_store: StoreFactory,
) -> None:
    """The chunk's one lookup guards its keys as one lookup per key did: in two serializable
    transactions that both found no decision, the second insert is a conflict (retried by
    `atomic`), not a duplicate key."""

    async def body(store: Store) -> None:
        if store.dialect != "postgres":
            return  # SQLite's one writer never interleaves two transactions
        both_read = asyncio.Barrier(2)
        keys = [("default", "ping", "src", "e1"), ("default", "ping", "src", "e2")]

        async def decide(record_id: str) -> None:
            async with store.transaction("serializable") as uow:
                assert await uow.enforcements.find_many("event", keys) == {}
                await both_read.wait()
                await uow.enforcements.add_many([_record(event_id="e2", id=record_id)])

        results = await asyncio.gather(decide("a"), decide("b"), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["NoneType", StoreConflict.__name__]

    run(make_store, body)


def test_a_skipped_event_is_recorded_and_replaced(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        log = store.repos.enforcements
        skipped = SkippedEvent("default", "src", "e1", "ping", 5.0, 5, "the store failed")
        await log.add_skipped(skipped)
        await log.add_skipped(replace(skipped, at=9.0, reason="again"))
        assert [s.reason for s in await log.skipped("e1", "default")] == ["again"]
        assert await log.skipped("e1", "other") == []
        assert (await log.skipped("e1", "default"))[0].to_json() == {
            "event_source": "src",
            "at": 9.0,
            "attempts": 5,
            "reason": "again",
        }

    run(make_store, body)


# --- two processes deciding one window ---------------------------------------------------------


def test_two_views_counting_one_window_together_count_every_event_once(
    make_store: StoreFactory,
) -> None:
    """Each unit of work counts one event and fires (resets) every 3rd; run by two views of one
    database at once (two pools on PostgreSQL), retried by `atomic` when they collide: every
    event is counted once and exactly a third of them fire."""

    async def body(store: Store) -> None:
        other = await make_store() if store.dialect == "postgres" else store
        fired: list[str] = []

        async def count(uid: str, uow: Repositories) -> bool:
            seen = await uow.windows.add_count(RULE, "k", uid, 1.0, 0.0)
            await asyncio.sleep(0)  # let the other view read the same window
            if seen < 3:
                return False
            await uow.windows.reset_count(RULE, "k")
            return True

        async def worker(view: Store, uids: list[str]) -> None:
            for uid in uids:
                if await view.atomic(lambda uow, u=uid: count(u, uow), attempts=100):
                    fired.append(uid)

        try:
            uids = [f"e{i}" for i in range(30)]
            await asyncio.gather(worker(store, uids[0::2]), worker(other, uids[1::2]))
            assert len(fired) == 10
            assert (await store.repos.windows.state(RULE)).counts == {}
        finally:
            if other is not store:
                await other.close()

    run(make_store, body)


def test_a_conflict_is_what_a_lost_serializable_decision_raises(make_store: StoreFactory) -> None:
    """Without `atomic`'s retry, one of two interleaved decisions on one key fails whole."""

    async def body(store: Store) -> None:
        if store.dialect != "postgres":
            return  # SQLite's one writer never interleaves two transactions
        both_read = asyncio.Barrier(2)

        async def decide(uid: str) -> None:
            async with store.transaction("serializable") as uow:
                await uow.windows.last_fired(RULE, "k")
                await both_read.wait()
                await uow.windows.set_last_fired(RULE, "k", 1.0)
                await uow.enforcements.add(_record(event_id=uid))

        results = await asyncio.gather(decide("a"), decide("b"), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["NoneType", StoreConflict.__name__]

    run(make_store, body)


def test_a_rule_comes_back_with_its_pattern_in_the_authors_key_order(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        spec = {"pattern": {"type": ["auth.login"], "subject": ["bob"]}, "actions": []}
        async with store.transaction() as uow:
            await uow.rules.put(StoredRule("default", "ordered", "admin", None, spec), 1.0)
        found = await store.repos.rules.find("default", "ordered")
        assert found is not None and list(found.spec["pattern"]) == ["type", "subject"]

    run(make_store, body)
