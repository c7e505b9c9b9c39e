"""Transitional: action jobs over the synchronous SQLite connection, until the queue runs on
the async store (repositories/actions.py, sql/actions.py).

Action jobs in the embedded SQLite store: one row per ActionRequest, keyed by idempotency key.

A job moves pending -> running -> succeeded, or back to pending with a later `next_attempt_at`
after a failed attempt, or to dead (the dead-letter queue) after its last one. `ondo dlq retry`
moves dead -> pending; `ondo dlq delete` moves dead -> discarded (the row stays, so the key still
deduplicates a replayed event and `ondo trace` still shows what happened).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ondo.backends.store.repositories.actions import (
    PLATFORM_CRASH,
    STATUSES,
    Job,
    NewJob,
    QueueStats,
)
from ondo.backends.store.sqlite import SqliteDatabase, dump_json
from ondo.backends.store.sqlite.migrations import MIGRATIONS

__all__ = ["STATUSES", "ActionJobRepository", "Job", "NewJob", "Outcome", "QueueStats"]


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, to store: succeeded, pending again (retry at `when`), or dead."""

    job_id: int
    status: str  # succeeded | pending | dead
    invocation_id: str | None = None
    result: Any = None
    error: Any = None
    when: float = 0.0  # next_attempt_at of a retry


class ActionJobRepository:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        db.migrate(MIGRATIONS)  # every domain's: idempotent

    # --- the queue's own transitions ----------------------------------------------------

    def insert_in(self, conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> int:
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
            "INSERT OR IGNORE INTO action_jobs (key, namespace, rule, action_index, kind,"
            " enforcement_id, event_source, event_id, status, max_attempts, next_attempt_at,"
            " request, created_at, updated_at, lane)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return conn.total_changes - before

    def settle_and_claim(
        self,
        outcomes: Sequence[Outcome],
        now: float,
        limit: int,
        allowance: Mapping[str, int] | None = None,
        new_lane_allowance: int = 1,
        look_past_full: bool = True,
    ) -> list[Job]:
        """Store finished attempts, then claim due jobs: one transaction for both.

        With `allowance` (lane -> how many more may run), at most that many jobs of a lane are
        claimed, and a lane not in the map gets `new_lane_allowance` (its limit is learnt once
        its first job is claimed). Only the first due jobs are looked at, unless
        `look_past_full`: then, if those are all in full lanes, the jobs behind them are
        searched too (a scan of the backlog, which the caller does only now and then).
        """
        if not outcomes and limit <= 0:
            return []
        with self.db.transaction() as conn:
            for outcome in outcomes:
                _store_outcome(conn, outcome, now)
            if limit <= 0:
                return []
            if allowance is None:
                rows = conn.execute(_CLAIM_DUE, (now, now, limit)).fetchall()
            else:
                ids = _pick(conn, now, limit, allowance, new_lane_allowance, look_past_full)
                rows = conn.execute(_claim_ids(len(ids)), (now, *ids)).fetchall() if ids else []
        return sorted((_job(r) for r in rows), key=lambda j: (j.next_attempt_at, j.id))

    def next_due_at(self, skip_lanes: Collection[str] = ()) -> float | None:
        """When the next pending job falls due (ignoring lanes that are full)."""
        marks = ", ".join("?" * len(skip_lanes))
        row = self.db.query_one(
            "SELECT MIN(next_attempt_at) FROM action_jobs WHERE status = 'pending'"
            + (f" AND lane NOT IN ({marks})" if skip_lanes else ""),
            tuple(skip_lanes),
        )
        return None if row is None or row[0] is None else float(row[0])

    def recover_running(self, now: float) -> tuple[int, list[Job]]:
        """After a crash: jobs left running go back to pending for the same attempt number,
        except those found running at the start before too, with no attempt finished since:
        they are dead-lettered (and returned), since they may be what crashes the platform.
        Returns how many went back to pending, and the dead-lettered jobs."""
        with self.db.transaction() as conn:
            buried = conn.execute(
                "UPDATE action_jobs SET status = 'dead', last_error = ?, updated_at = ?,"
                " finished_at = ? WHERE status = 'running' AND recovered > 0 RETURNING *",
                (dump_json(PLATFORM_CRASH), now, now),
            ).fetchall()
            resumed = conn.execute(
                _REQUEUE.format(count=", recovered = recovered + 1", ids="status = 'running'"),
                (now, now),
            ).rowcount
        return resumed, [_job(r) for r in buried]

    def requeue(self, job_ids: Sequence[int], now: float) -> None:
        """Jobs a clean stop cut off: back to pending for the same attempt, not counted as a
        crash."""
        if job_ids:
            where = f"status = 'running' AND id IN ({', '.join('?' * len(job_ids))})"
            self.db.execute(_REQUEUE.format(count="", ids=where), (now, now, *job_ids))

    def prune(self, finished_before: float, limit: int = 10_000) -> int:
        """Forget succeeded and discarded jobs finished before the given time; returns how many.

        Dead and unfinished jobs are kept whatever their age: someone still has to act on them.
        """
        cur = self.db.execute(
            "DELETE FROM action_jobs WHERE id IN (SELECT id FROM action_jobs WHERE status IN"
            " ('succeeded', 'discarded') AND COALESCE(finished_at, updated_at) < ? LIMIT ?)",
            (finished_before, limit),
        )
        return cur.rowcount

    # --- reading ------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        row = self.db.query_one("SELECT * FROM action_jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    def by_enforcement(self, enforcement_id: str) -> list[Job]:
        rows = self.db.query(
            "SELECT * FROM action_jobs WHERE enforcement_id = ? ORDER BY action_index, id",
            (enforcement_id,),
        )
        return [_job(r) for r in rows]

    def dead(self, namespace: str, limit: int = 100, after_id: int = 0) -> list[Job]:
        rows = self.db.query(
            "SELECT * FROM action_jobs WHERE status = 'dead' AND namespace = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (namespace, after_id, limit),
        )
        return [_job(r) for r in rows]

    def queue_stats(self) -> QueueStats:
        """What /metrics shows of the queue; reads the pending, running and dead rows only."""
        counts = {status: _scalar(self.db.query_one(sql)) for status, sql in _COUNT_SQL.items()}
        oldest = self.db.query_one(
            "SELECT MIN(created_at) FROM action_jobs WHERE status = 'pending'"
        )
        rows = self.db.query(
            "SELECT namespace, lane, COUNT(*) FROM action_jobs WHERE status IN"
            " ('pending', 'running') AND kind = 'invoke-async' GROUP BY namespace, lane"
        )
        backlog = {(r[0], str(r[1]).rpartition("/")[2]): int(r[2]) for r in rows}
        first = oldest[0] if oldest is not None and oldest[0] is not None else None
        return QueueStats(counts, first, backlog)

    def counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT status, COUNT(*) FROM action_jobs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    # --- the dead-letter queue ----------------------------------------------------------

    def revive(self, job_ids: Sequence[int], now: float) -> int:
        """Dead -> pending with attempts reset, due now. Returns how many moved."""
        with self.db.transaction() as conn:
            moved = 0
            for job_id in job_ids:
                moved += conn.execute(
                    "UPDATE action_jobs SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                    " created_at = ?, updated_at = ?, finished_at = NULL, recovered = 0"
                    " WHERE id = ? AND status = 'dead'",
                    (now, now, now, job_id),
                ).rowcount
            return moved

    def discard(self, job_id: int, now: float) -> bool:
        cur = self.db.execute(
            "UPDATE action_jobs SET status = 'discarded', updated_at = ?"
            " WHERE id = ? AND status = 'dead'",
            (now, job_id),
        )
        return cur.rowcount == 1


_CLAIMED = (
    "UPDATE action_jobs SET status = 'running', attempts = attempts + 1,"
    " attempt_seq = attempt_seq + 1, updated_at = ? WHERE id IN ({ids}) RETURNING *"
)
_CLAIM_DUE = _CLAIMED.format(
    ids="SELECT id FROM action_jobs WHERE status = 'pending' AND next_attempt_at <= ?"
    " ORDER BY next_attempt_at, id LIMIT ?"
)
SCAN_FACTOR = 4  # due jobs looked at per free slot when lanes have limits
MIN_WINDOW = 64  # ... and at least this many (a lane not yet known may be among them)


_REQUEUE = (
    "UPDATE action_jobs SET status = 'pending', attempts = MAX(attempts - 1, 0),"
    " attempt_seq = MAX(attempt_seq - 1, 0), next_attempt_at = ?, updated_at = ?{count}"
    " WHERE {ids}"
)

# Literal statuses, so that SQLite counts from the partial index of each.
_COUNT_SQL = {
    status: f"SELECT COUNT(*) FROM action_jobs WHERE status = '{status}'"
    for status in ("pending", "running", "dead")
}


def _scalar(row: sqlite3.Row | None) -> int:
    return int(row[0]) if row is not None and row[0] is not None else 0


def _claim_ids(count: int) -> str:
    return _CLAIMED.format(ids=", ".join("?" * count))


def _pick(
    conn: sqlite3.Connection,
    now: float,
    limit: int,
    allowance: Mapping[str, int],
    new_lane_allowance: int,
    look_past_full: bool,
) -> list[int]:
    """Due job ids in order, at most `limit`, no lane over its allowance."""
    # Free workers beyond what the known lanes may still start cannot be used by them: a busy
    # lane with one free slot looks at a few rows, not at four per idle worker (each row costs
    # about a microsecond, and a busy queue claims after every finished job). Lanes not known
    # yet are found in the first MIN_WINDOW rows, or by the backlog scan behind full lanes.
    room = sum(max(left, 0) for lane, left in allowance.items() if lane)
    window = max(min(limit, room) * SCAN_FACTOR, MIN_WINDOW)
    candidates = conn.execute(
        "SELECT id, lane, next_attempt_at FROM action_jobs INDEXED BY action_jobs_due_lane"
        " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        (now, window),
    ).fetchall()
    left = dict(allowance)
    picked = _take(candidates, left, new_lane_allowance, limit)
    if len(picked) < limit and len(candidates) == window and look_past_full:
        full = [lane for lane, room in left.items() if room <= 0]
        last_at, last_id = candidates[-1][2], candidates[-1][0]
        marks = ", ".join("?" * len(full))
        behind = conn.execute(
            "SELECT id, lane, next_attempt_at FROM action_jobs INDEXED BY action_jobs_due_lane"
            " WHERE status = 'pending' AND next_attempt_at <= ?"
            " AND (next_attempt_at, id) > (?, ?)"
            + (f" AND lane NOT IN ({marks})" if full else "")
            + " ORDER BY next_attempt_at, id LIMIT ?",
            (now, last_at, last_id, *full, window),
        ).fetchall()
        picked += _take(behind, left, new_lane_allowance, limit - len(picked))
    return picked


def _take(
    candidates: Sequence[sqlite3.Row], left: dict[str, int], new_lane_allowance: int, limit: int
) -> list[int]:
    picked: list[int] = []
    for row in candidates:
        if len(picked) == limit:
            break
        job_id, lane = row[0], row[1]
        room = left.get(lane, new_lane_allowance)
        if room > 0:
            left[lane] = room - 1
            picked.append(job_id)
    return picked


def _store_outcome(conn: sqlite3.Connection, outcome: Outcome, now: float) -> None:
    appended = _append(outcome.invocation_id)
    if outcome.status == "pending":
        conn.execute(
            "UPDATE action_jobs SET status = 'pending', next_attempt_at = ?, last_error = ?,"
            f" updated_at = ?, recovered = 0, invocation_ids = {_APPEND_ID} WHERE id = ?",
            (outcome.when, dump_json(outcome.error), now, *appended, outcome.job_id),
        )
        return
    conn.execute(
        "UPDATE action_jobs SET status = ?, result = ?, last_error = COALESCE(?, last_error),"
        f" updated_at = ?, finished_at = ?, recovered = 0, invocation_ids = {_APPEND_ID}"
        " WHERE id = ?",
        (
            outcome.status,
            dump_json(outcome.result),
            dump_json(outcome.error),
            now,
            now,
            *appended,
            outcome.job_id,
        ),
    )


# Append an invocation id to the JSON list unless absent or already there (bound three times).
_APPEND_ID = (
    "CASE WHEN ? IS NULL OR invocation_ids LIKE '%\"' || ? || '\"%' THEN invocation_ids"
    " ELSE json_insert(invocation_ids, '$[#]', ?) END"
)


def _append(invocation_id: str | None) -> tuple[str | None, str | None, str | None]:
    return (invocation_id, invocation_id, invocation_id)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        key=row["key"],
        namespace=row["namespace"],
        rule=row["rule"],
        action_index=row["action_index"],
        kind=row["kind"],
        enforcement_id=row["enforcement_id"],
        event_source=row["event_source"],
        event_id=row["event_id"],
        status=row["status"],
        attempts=row["attempts"],
        attempt_seq=row["attempt_seq"],
        max_attempts=row["max_attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=json.loads(row["last_error"]) if row["last_error"] else None,
        invocation_ids=json.loads(row["invocation_ids"] or "[]"),
        result=json.loads(row["result"]) if row["result"] else None,
        request=row["request"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        lane=row["lane"],
    )
