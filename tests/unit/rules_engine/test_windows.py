"""The window state machines on a real SQLite store: counts, throttles, timers, restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite.migrations import MIGRATIONS
from ondo.rules import windows

RULE = "default/r"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "ondo.db")
    database.migrate(MIGRATIONS)
    yield database
    database.close()


def _count(db: SqliteDatabase, key: str, uid: str, now: float) -> windows.CountResult:
    with db.transaction() as conn:
        return windows.count(conn, RULE, key, uid, now, threshold=3, within_s=100.0)


def test_count_fires_on_the_nth_event_then_starts_again(db: SqliteDatabase) -> None:
    results = [_count(db, "k", f"e{i}", 10.0 + i) for i in range(7)]
    assert [r.reached for r in results] == [False, False, True, False, False, True, False]
    assert [r.count for r in results] == [1, 2, 3, 1, 2, 3, 1]


def test_count_is_a_sliding_window(db: SqliteDatabase) -> None:
    _count(db, "k", "a", 0.0)
    _count(db, "k", "b", 50.0)
    late = _count(db, "k", "c", 100.0)  # "a" is exactly 100 s old: out of the window
    assert (late.count, late.reached) == (2, False)
    assert _count(db, "k", "d", 120.0).reached


def test_count_keys_are_separate(db: SqliteDatabase) -> None:
    for i in range(2):
        _count(db, "alice", f"a{i}", float(i))
        _count(db, "bob", f"b{i}", float(i))
    assert _count(db, "alice", "a2", 5.0).reached
    assert not _count(db, "carol", "c0", 5.0).reached
    assert _count(db, "bob", "b2", 5.0).reached


def test_the_same_event_counts_once(db: SqliteDatabase) -> None:
    _count(db, "k", "same", 1.0)
    assert _count(db, "k", "same", 2.0).count == 1


def test_counts_survive_reopening_the_store(tmp_path: Path) -> None:
    first = SqliteDatabase(tmp_path / "x.db")
    first.migrate(MIGRATIONS)
    _count(first, "k", "a", 1.0)
    _count(first, "k", "b", 2.0)
    first.close()
    second = SqliteDatabase(tmp_path / "x.db")
    second.migrate(MIGRATIONS)
    assert _count(second, "k", "c", 3.0).reached
    second.close()


def test_throttle_allows_once_per_period_per_key(db: SqliteDatabase) -> None:
    def allows(key: str, now: float) -> bool:
        with db.transaction() as conn:
            return windows.throttle_allows(conn, RULE, key, now, per_s=60.0)[0]

    assert allows("k", 0.0)
    assert not allows("k", 59.9)
    assert allows("other", 30.0)
    assert allows("k", 60.0)
    assert not allows("k", 100.0)  # a suppressed firing does not move the period


def test_timer_starts_once_per_key_and_comes_due(db: SqliteDatabase) -> None:
    with db.transaction() as conn:
        first, started = windows.start_timer(conn, RULE, "k", 10.0, 600.0, {"id": "1"})
        again, started_again = windows.start_timer(conn, RULE, "k", 20.0, 600.0, {"id": "2"})
    assert started and not started_again
    assert again.id == first.id and again.due_at == 610.0 and again.event == {"id": "1"}
    with db.transaction() as conn:
        assert windows.due_timers(conn, 609.0) == []
        due = windows.due_timers(conn, 610.0)
        assert [t.id for t in due] == [first.id]
        windows.mark_timer(conn, first.id, "fired")
        assert windows.due_timers(conn, 1000.0) == []
        assert windows.next_due(conn) is None


def test_cancel_removes_the_pending_timer_only(db: SqliteDatabase) -> None:
    with db.transaction() as conn:
        windows.start_timer(conn, RULE, "a", 0.0, 10.0, {"id": "1"})
        windows.start_timer(conn, RULE, "b", 0.0, 20.0, {"id": "2"})
        cancelled = windows.cancel_timer(conn, RULE, "a")
        assert cancelled is not None and cancelled.event == {"id": "1"}
        assert windows.cancel_timer(conn, RULE, "a") is None
        assert windows.next_due(conn) == 20.0
        # a cancelled key can start a fresh timer
        fresh, started = windows.start_timer(conn, RULE, "a", 5.0, 10.0, {"id": "3"})
        assert started and fresh.due_at == 15.0


def test_forget_rule_drops_all_state(db: SqliteDatabase) -> None:
    _count(db, "k", "a", 1.0)
    with db.transaction() as conn:
        windows.throttle_allows(conn, RULE, "", 1.0, 60.0)
        windows.start_timer(conn, RULE, "k", 1.0, 10.0, {"id": "1"})
        windows.forget_rule(conn, RULE)
        state = windows.window_state(conn, RULE)
    assert state == {"counts": {}, "last_fired": {}, "pending_timers": []}
