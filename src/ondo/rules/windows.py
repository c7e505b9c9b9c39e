"""Persistent rule state: count windows, sustain (`for D`) timers and throttles.

Every function here runs inside the caller's transaction (`sqlite3.Connection`), so the engine can
update window state and write the enforcement record that depends on it atomically: a crash
either keeps both or neither, and a re-delivered event finds its decision already recorded.

Time is the platform clock at dispatch time (not the event's `time` attribute), so windows behave
the same for late or clock-skewed producers and tests with the manual clock are deterministic.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CountResult:
    count: int  # events in the window after this one (before any reset)
    reached: bool  # the count hit the threshold: fire, and the key's count was reset


@dataclass(frozen=True)
class Timer:
    id: int
    rule_id: str
    key: str
    started_at: float
    due_at: float
    event: dict[str, Any]  # the triggering event's JSON form
    status: str  # pending | fired | cancelled


def _timer(row: sqlite3.Row | tuple[Any, ...]) -> Timer:
    tid, rid, key, started, due, event, status = tuple(row)
    return Timer(tid, rid, key, started, due, json.loads(event), status)


_TIMER_COLUMNS = "id, rule_id, key, started_at, due_at, event, status"


def count(
    conn: sqlite3.Connection,
    rule_id: str,
    key: str,
    event_uid: str,
    now: float,
    threshold: int,
    within_s: float,
) -> CountResult:
    """Count one event for (rule, key) in the sliding window; reset the key when it fires."""
    conn.execute(
        "DELETE FROM rule_counts WHERE rule_id = ? AND key = ? AND at <= ?",
        (rule_id, key, now - within_s),
    )
    conn.execute(
        "INSERT OR IGNORE INTO rule_counts (rule_id, key, event_uid, at) VALUES (?, ?, ?, ?)",
        (rule_id, key, event_uid, now),
    )
    (seen,) = conn.execute(
        "SELECT COUNT(*) FROM rule_counts WHERE rule_id = ? AND key = ?", (rule_id, key)
    ).fetchone()
    if seen < threshold:
        return CountResult(seen, False)
    conn.execute("DELETE FROM rule_counts WHERE rule_id = ? AND key = ?", (rule_id, key))
    return CountResult(seen, True)


def throttle_allows(
    conn: sqlite3.Connection, rule_id: str, key: str, now: float, per_s: float
) -> tuple[bool, float | None]:
    """(allowed, last firing time); an allowed firing is remembered as the new last one."""
    row = conn.execute(
        "SELECT last_fired_at FROM rule_throttles WHERE rule_id = ? AND key = ?", (rule_id, key)
    ).fetchone()
    last = float(row[0]) if row is not None else None
    if last is not None and now - last < per_s:
        return False, last
    conn.execute(
        "INSERT OR REPLACE INTO rule_throttles (rule_id, key, last_fired_at) VALUES (?, ?, ?)",
        (rule_id, key, now),
    )
    return True, last


def pending_timer(conn: sqlite3.Connection, rule_id: str, key: str) -> Timer | None:
    row = conn.execute(
        f"SELECT {_TIMER_COLUMNS} FROM rule_timers"
        " WHERE rule_id = ? AND key = ? AND status = 'pending'",
        (rule_id, key),
    ).fetchone()
    return _timer(row) if row is not None else None


def start_timer(
    conn: sqlite3.Connection,
    rule_id: str,
    key: str,
    now: float,
    for_s: float,
    event: dict[str, Any],
) -> tuple[Timer, bool]:
    """(timer, started): a new timer due at now + for_s, or the one already pending for the key."""
    existing = pending_timer(conn, rule_id, key)
    if existing is not None:
        return existing, False
    cursor = conn.execute(
        "INSERT INTO rule_timers (rule_id, key, started_at, due_at, event, status)"
        " VALUES (?, ?, ?, ?, ?, 'pending')",
        (rule_id, key, now, now + for_s, json.dumps(event, sort_keys=True)),
    )
    timer_id = int(cursor.lastrowid or 0)
    return Timer(timer_id, rule_id, key, now, now + for_s, event, "pending"), True


def cancel_timer(conn: sqlite3.Connection, rule_id: str, key: str) -> Timer | None:
    """Cancel the pending timer of (rule, key), if any; returns what was cancelled."""
    existing = pending_timer(conn, rule_id, key)
    if existing is not None:
        conn.execute("UPDATE rule_timers SET status = 'cancelled' WHERE id = ?", (existing.id,))
    return existing


def due_timers(conn: sqlite3.Connection, now: float, limit: int = 100) -> list[Timer]:
    rows = conn.execute(
        f"SELECT {_TIMER_COLUMNS} FROM rule_timers WHERE status = 'pending' AND due_at <= ?"
        " ORDER BY due_at, id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [_timer(r) for r in rows]


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MIN(due_at) FROM rule_timers WHERE status = 'pending'").fetchone()
    return float(row[0]) if row is not None and row[0] is not None else None


def mark_timer(conn: sqlite3.Connection, timer_id: int, status: str) -> None:
    conn.execute("UPDATE rule_timers SET status = ? WHERE id = ?", (status, timer_id))


def forget_rule(conn: sqlite3.Connection, rule_id: str) -> None:
    """Drop every count and throttle of a rule and cancel its timers (rule deleted or changed)."""
    conn.execute("DELETE FROM rule_counts WHERE rule_id = ?", (rule_id,))
    conn.execute("DELETE FROM rule_throttles WHERE rule_id = ?", (rule_id,))
    conn.execute(
        "UPDATE rule_timers SET status = 'cancelled' WHERE rule_id = ? AND status = 'pending'",
        (rule_id,),
    )


def window_state(conn: sqlite3.Connection, rule_id: str) -> dict[str, Any]:
    """What a rule's windows hold now, for `ondo trace` and `rules show`."""
    counts = conn.execute(
        "SELECT key, COUNT(*) FROM rule_counts WHERE rule_id = ? GROUP BY key ORDER BY key",
        (rule_id,),
    ).fetchall()
    throttles = conn.execute(
        "SELECT key, last_fired_at FROM rule_throttles WHERE rule_id = ? ORDER BY key", (rule_id,)
    ).fetchall()
    timers = conn.execute(
        f"SELECT {_TIMER_COLUMNS} FROM rule_timers WHERE rule_id = ? AND status = 'pending'"
        " ORDER BY due_at",
        (rule_id,),
    ).fetchall()
    return {
        "counts": {k: n for k, n in counts},
        "last_fired": {k: t for k, t in throttles},
        "pending_timers": [
            {"key": t.key, "started_at": t.started_at, "due_at": t.due_at}
            for t in map(_timer, timers)
        ],
    }
