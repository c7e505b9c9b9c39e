"""Retention's prune statements, on SQLite and PostgreSQL: oldest first, at most `limit` per
call, and never a row that can still change a decision (live windows, pending timers)."""

from __future__ import annotations

import math

from ondo.backends.store import Store
from ondo.backends.store.repositories.rules import Enforcement, SkippedEvent
from tests.unit.store.conftest import StoreFactory
from tests.unit.store.test_rules import run


def decision(n: int, at: float) -> Enforcement:
    return Enforcement(
        id=f"enf-{n}",
        namespace="default",
        rule="r",
        stage="event",
        event_source="/s",
        event_id=f"e{n}",
        event_type="t",
        at=at,
        outcome="fired",
        detail="",
    )


def test_decisions_go_oldest_first(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        log = store.repos.enforcements
        for n, at in enumerate([3.0, 1.0, 2.0, 50.0]):
            await log.add(decision(n, at))
        assert await log.prune(10.0, 2) == 2
        assert [r.id for r in await log.for_event("e0")] == ["enf-0"]  # the one at 3.0 is left
        assert await log.prune(10.0, 2) == 1
        assert await log.prune(10.0, 2) == 0
        left = {r.id for e in ("e0", "e1", "e2", "e3") for r in await log.for_event(e)}
        assert left == {"enf-3"}

    run(make_store, body)


def test_skipped_event_records_go_oldest_first(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        log = store.repos.enforcements
        for n, at in enumerate([4.0, 1.0, 30.0]):
            await log.add_skipped(SkippedEvent("default", "/s", f"e{n}", "t", at, 3, "broken"))
        assert await log.prune_skipped(10.0, 1) == 1
        assert await log.skipped("e1", "default") == []
        assert await log.skipped("e0", "default") != []
        assert await log.prune_skipped(10.0, 10) == 1
        assert await log.skipped("e2", "default") != []

    run(make_store, body)


def test_window_rows_go_once_out_of_their_window(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        windows = store.repos.windows
        for n, at in enumerate([1.0, 2.0, 5.5]):  # a quiet subject: never counted again
            await windows.add_count("ns/r", "quiet", f"u{n}", at, at - 5.0)
        await windows.add_count("ns/gone", "k", "u9", 1.0, -4.0)
        await windows.set_last_fired("ns/r", "old", 1.0)
        await windows.set_last_fired("ns/r", "new", 8.0)
        fired = await windows.add_timer("ns/r", "k", 1.0, 3.0, {"id": "e"})
        await windows.set_timer_status(fired.id, "fired")
        await windows.add_timer("ns/r", "k", 4.0, 6.0, {"id": "e"})  # pending: kept
        now = 10.0
        assert await windows.next_rule_with_rows("rule_counts", "") == "ns/gone"
        assert await windows.next_rule_with_rows("rule_counts", "ns/gone") == "ns/r"
        assert await windows.next_rule_with_rows("rule_counts", "ns/r") is None
        assert await windows.next_rule_with_rows("rule_throttles", "") == "ns/r"
        assert await windows.prune_counts("ns/r", now - 5.0, 1) == 1  # at most the limit
        assert await windows.prune_counts("ns/r", now - 5.0, 10) == 1
        assert await windows.prune_counts("ns/gone", math.inf, 10) == 1
        assert await windows.prune_throttles("ns/r", now - 5.0, 10) == 1
        assert await windows.prune_timers(now, 10) == 1
        state = await windows.state("ns/r")
        assert state.counts == {"quiet": 1}  # the event at 5.5 is still in its window
        assert state.last_fired == {"new": 8.0}
        assert len(state.pending_timers) == 1
        assert (await windows.state("ns/gone")).counts == {}

    run(make_store, body)


def test_a_watermark_only_rises(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        marks = store.repos.watermarks
        assert await marks.get("events") is None
        await marks.raise_to("events", 100.0, now=200.0)
        await marks.raise_to("events", 50.0, now=210.0)
        assert await marks.get("events") == 100.0
        await marks.raise_to("events", 150.0, now=220.0)
        assert await marks.get("events") == 150.0
        assert await marks.get("action_jobs") is None

    run(make_store, body)
