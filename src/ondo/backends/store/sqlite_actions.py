"""Transitional: action jobs stored inside a synchronous SQLite transaction, for the rules
engine until it decides in a unit of work of the async store (then this module goes; the jobs'
repository is repositories/actions.py + sql/actions.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ondo.backends.store.repositories.actions import NewJob


def insert_in(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> int:
    """Store new jobs inside the caller's transaction; a key seen before is ignored.
    Returns how many were new."""
    rows = [
        (
            j.key,
            j.namespace,
            j.rule,
            j.action_index,
            j.kind,
            j.enforcement_id,
            j.event_source,
            j.event_id,
            j.max_attempts,
            now,
            j.request,
            now,
            now,
            j.lane,
        )
        for j in jobs
    ]
    before = conn.total_changes
    conn.executemany(
        "INSERT INTO action_jobs (key, namespace, rule, action_index, kind,"
        " enforcement_id, event_source, event_id, status, max_attempts, next_attempt_at,"
        " request, created_at, updated_at, lane)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO NOTHING",
        rows,
    )
    return conn.total_changes - before
