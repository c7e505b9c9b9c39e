"""Action jobs in SQL, one text for SQLite and PostgreSQL (see repositories/actions.py).

Claiming between processes: on PostgreSQL the due jobs are read `FOR UPDATE SKIP LOCKED`, so
two claimers take different jobs instead of queueing behind each other's row locks; every
claim's UPDATE also re-checks `status = 'pending'`, which PostgreSQL evaluates on the row's
latest committed version, so a job is never claimed twice whatever the isolation. SQLite has
one writer at a time, so its claims are serial anyway (and it has no row locks to skip).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from ondo.backends.store.base import Row, Sql
from ondo.backends.store.repositories.actions import (
    PLATFORM_CRASH,
    Job,
    LaneClaim,
    NewJob,
    Outcome,
    QueueStats,
)

SCAN_FACTOR = 4  # due jobs looked at per free slot when lanes have limits
MIN_WINDOW = 64  # ... and at least this many (a lane not yet known may be among them)
IN_CHUNK = 500  # ids per `IN (…)` list
INSERT_CHUNK = 200  # jobs per INSERT (14 parameters each)

_INSERT = (
    "INSERT INTO action_jobs (key, namespace, rule, action_index, kind, enforcement_id,"
    " event_source, event_id, status, max_attempts, next_attempt_at, request, created_at,"
    " updated_at, lane) VALUES {values} ON CONFLICT (key) DO NOTHING RETURNING id"
)
_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)"
_CLAIMED = (
    "UPDATE action_jobs SET status = 'running', attempts = attempts + 1,"
    " attempt_seq = attempt_seq + 1, updated_at = ?, owner = ?"
    " WHERE status = 'pending' AND id IN ({ids})"
    " RETURNING *"
)
# Lanes' allowances as rows (a NULL lane matches none, so the list is never empty).
_CLAIM_IN_LANES = (
    "WITH picked AS MATERIALIZED ({due}),"
    " allowance (lane, room) AS (VALUES {rooms}),"
    " ranked AS (SELECT picked.id, picked.next_attempt_at, ROW_NUMBER() OVER"
    " (PARTITION BY picked.lane ORDER BY picked.next_attempt_at, picked.id) AS n,"
    " COALESCE(allowance.room, CAST(? AS INTEGER)) AS room"
    " FROM picked LEFT JOIN allowance ON allowance.lane = picked.lane),"
    " chosen AS (SELECT id FROM ranked WHERE n <= room ORDER BY next_attempt_at, id LIMIT ?) "
) + _CLAIMED.format(ids="SELECT id FROM chosen")
_DUE = (
    "SELECT {columns} FROM action_jobs{hint} WHERE status = 'pending' AND next_attempt_at <= ?"
    "{more} ORDER BY next_attempt_at, id LIMIT ?{lock}"
)
_REQUEUE = (
    "UPDATE action_jobs SET status = 'pending',"
    " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
    " attempt_seq = CASE WHEN attempt_seq > 0 THEN attempt_seq - 1 ELSE 0 END,"
    " next_attempt_at = ?, updated_at = ?, resumed = 1{count} WHERE status = 'running'{ids}"
)
_RETRY_LATER = (
    "UPDATE action_jobs SET status = 'pending', next_attempt_at = ?, last_error = ?,"
    " updated_at = ?, recovered = 0, resumed = 0, invocation_ids = ?"
    " WHERE id = ? AND status = 'running'"
)
_FINISH = (
    "UPDATE action_jobs SET status = ?, result = ?, last_error = COALESCE(?, last_error),"
    " updated_at = ?, finished_at = ?, recovered = 0, resumed = 0, invocation_ids = ?"
    " WHERE id = ? AND status = 'running'"
)
# Literal statuses, so that each count reads the partial index of its status.
_COUNT_SQL = {
    status: f"SELECT COUNT(*) FROM action_jobs WHERE status = '{status}'"
    for status in ("pending", "running", "dead")
}


class SqlJobRepository:
    """`JobRepository` over one `Sql`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        postgres = sql.dialect == "postgres"
        self._lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
        # SQLite's planner may pick the (next_attempt_at, id) index and read each row for
        # its lane; the covering index answers from the index alone. PostgreSQL chooses well.
        self._hint = "" if postgres else " INDEXED BY action_jobs_due_lane"

    # --- the queue's own transitions ----------------------------------------------------

    async def insert(self, jobs: Sequence[NewJob], now: float) -> int:
        new = 0
        for start in range(0, len(jobs), INSERT_CHUNK):  # one statement per chunk
            chunk = jobs[start : start + INSERT_CHUNK]
            values = ", ".join([_VALUES] * len(chunk))
            params = [p for j in chunk for p in _insert_params(j, float(now))]
            new += len(await self._sql.fetch(_INSERT.format(values=values), params))
        return new

    async def settle(self, outcomes: Sequence[Outcome], now: float) -> None:
        # One statement text per kind of outcome, run for every row at once: asyncpg sends
        # the rows in one pipeline instead of a round trip each.
        retries = [_retry_params(o, float(now)) for o in outcomes if o.status == "pending"]
        finished = [_finish_params(o, float(now)) for o in outcomes if o.status != "pending"]
        if retries:
            await self._sql.execute_many(_RETRY_LATER, retries)
        if finished:
            await self._sql.execute_many(_FINISH, finished)

    async def claim(
        self, now: float, limit: int, lanes: LaneClaim | None = None, owner: str = ""
    ) -> list[Job]:
        if limit <= 0:
            return []
        if lanes is None:
            # Materialized: PostgreSQL may run an `IN (subquery … LIMIT)` more than once per
            # statement and so claim more than `limit`; the picked ids are fixed first.
            due = _DUE.format(columns="id", hint="", more="", lock=self._lock)
            claim = f"WITH picked AS MATERIALIZED ({due}) " + _CLAIMED.format(
                ids="SELECT id FROM picked"
            )
            rows = await self._sql.fetch(claim, (float(now), limit, float(now), owner))
        elif not lanes.look_past_full:
            rows = await self._claim_in_lanes(float(now), limit, lanes, owner)
        else:
            ids = await self._pick(float(now), limit, lanes)
            rows = []
            if ids:
                marks = ", ".join("?" * len(ids))
                params = (float(now), owner, *ids)
                rows = await self._sql.fetch(_CLAIMED.format(ids=marks), params)
        return sorted((_job(r) for r in rows), key=lambda j: (j.next_attempt_at, j.id))

    async def _claim_in_lanes(
        self, now: float, limit: int, lanes: LaneClaim, owner: str
    ) -> list[Row]:
        """`_pick` and the claim in one statement, without the scan behind full lanes: each
        lane's first due jobs up to its allowance (ROW_NUMBER per lane), the first `limit` of
        those in due order. One round trip instead of two."""
        room = sum(max(left, 0) for lane, left in lanes.allowance.items() if lane)
        window = max(min(limit, room) * SCAN_FACTOR, MIN_WINDOW)
        columns = "id, lane, next_attempt_at"
        due = _DUE.format(columns=columns, hint=self._hint, more="", lock=self._lock)
        rooms = ", ".join(["(?, CAST(? AS INTEGER))"] * len(lanes.allowance) + ["(NULL, 0)"])
        sql = _CLAIM_IN_LANES.format(due=due, rooms=rooms)
        allowance = [p for lane, left in lanes.allowance.items() for p in (lane, left)]
        params = (now, window, *allowance, lanes.new_lane, limit, now, owner)
        return await self._sql.fetch(sql, params)

    async def _pick(self, now: float, limit: int, lanes: LaneClaim) -> list[int]:
        """Due job ids in order, at most `limit`, no lane over its allowance."""
        # Free workers beyond what the known lanes may still start cannot be used by them: a
        # busy lane with one free slot looks at a few rows, not at four per idle worker (each
        # row costs about a microsecond, and a busy queue claims after every finished job).
        # Lanes not known yet are found in the first MIN_WINDOW rows, or by the backlog scan
        # behind full lanes.
        room = sum(max(left, 0) for lane, left in lanes.allowance.items() if lane)
        window = max(min(limit, room) * SCAN_FACTOR, MIN_WINDOW)
        columns = "id, lane, next_attempt_at"
        first = _DUE.format(columns=columns, hint=self._hint, more="", lock=self._lock)
        candidates = await self._sql.fetch(first, (now, window))
        left = dict(lanes.allowance)
        picked = _take(candidates, left, lanes.new_lane, limit)
        if len(picked) < limit and len(candidates) == window and lanes.look_past_full:
            full = [lane for lane, room in left.items() if room <= 0]
            more = " AND (next_attempt_at, id) > (?, ?)"
            more += f" AND lane NOT IN ({', '.join('?' * len(full))})" if full else ""
            behind = _DUE.format(columns=columns, hint=self._hint, more=more, lock=self._lock)
            last_at, last_id = float(candidates[-1][2]), int(candidates[-1][0])
            rows = await self._sql.fetch(behind, (now, last_at, last_id, *full, window))
            picked += _take(rows, left, lanes.new_lane, limit - len(picked))
        return picked

    async def next_due_at(self, skip_lanes: Collection[str] = ()) -> float | None:
        marks = ", ".join("?" * len(skip_lanes))
        value = await self._sql.fetch_value(
            "SELECT MIN(next_attempt_at) FROM action_jobs WHERE status = 'pending'"
            + (f" AND lane NOT IN ({marks})" if skip_lanes else ""),
            tuple(skip_lanes),
        )
        return None if value is None else float(value)

    async def recover_running(self, now: float, owner: str = "") -> tuple[int, list[Job]]:
        buried = await self._sql.fetch(
            "UPDATE action_jobs SET status = 'dead', last_error = ?, updated_at = ?,"
            " finished_at = ? WHERE status = 'running' AND owner IN (?, '') AND recovered > 0"
            " RETURNING *",
            (_dump(PLATFORM_CRASH), float(now), float(now), owner),
        )
        resumed = await self._sql.execute(
            _REQUEUE.format(count=", recovered = recovered + 1", ids=" AND owner IN (?, '')"),
            (float(now), float(now), owner),
        )
        return resumed, [_job(r) for r in buried]

    async def requeue(self, job_ids: Sequence[int], now: float) -> None:
        for chunk in _chunks(job_ids):
            where = f" AND id IN ({', '.join('?' * len(chunk))})"
            await self._sql.execute(
                _REQUEUE.format(count="", ids=where), (float(now), float(now), *chunk)
            )

    async def prune(self, before: float, limit: int) -> int:
        return await self._sql.execute(
            "DELETE FROM action_jobs WHERE id IN (SELECT id FROM action_jobs WHERE status IN"
            " ('succeeded', 'discarded') AND updated_at < ? ORDER BY updated_at LIMIT ?)",
            (float(before), limit),
        )

    # --- reading ------------------------------------------------------------------------

    async def get(self, job_id: int) -> Job | None:
        row = await self._sql.fetch_one("SELECT * FROM action_jobs WHERE id = ?", (job_id,))
        return _job(row) if row is not None else None

    async def by_enforcement(self, enforcement_id: str) -> list[Job]:
        rows = await self._sql.fetch(
            "SELECT * FROM action_jobs WHERE enforcement_id = ? ORDER BY action_index, id",
            (enforcement_id,),
        )
        return [_job(r) for r in rows]

    async def dead(self, namespace: str, limit: int = 100, after_id: int = 0) -> list[Job]:
        rows = await self._sql.fetch(
            "SELECT * FROM action_jobs WHERE status = 'dead' AND namespace = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (namespace, after_id, limit),
        )
        return [_job(r) for r in rows]

    async def queue_stats(self) -> QueueStats:
        counts = {
            status: int(await self._sql.fetch_value(sql) or 0) for status, sql in _COUNT_SQL.items()
        }
        oldest = await self._sql.fetch_value(
            "SELECT MIN(created_at) FROM action_jobs WHERE status = 'pending'"
        )
        rows = await self._sql.fetch(
            "SELECT namespace, lane, COUNT(*) FROM action_jobs WHERE status IN"
            " ('pending', 'running') AND kind = 'invoke-async' GROUP BY namespace, lane"
        )
        backlog = {(str(r[0]), str(r[1]).rpartition("/")[2]): int(r[2]) for r in rows}
        return QueueStats(counts, None if oldest is None else float(oldest), backlog)

    async def counts(self) -> dict[str, int]:
        rows = await self._sql.fetch("SELECT status, COUNT(*) FROM action_jobs GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    # --- the dead-letter queue ----------------------------------------------------------

    async def revive(self, job_ids: Sequence[int], now: float) -> int:
        moved = 0
        for chunk in _chunks(job_ids):
            moved += await self._sql.execute(
                "UPDATE action_jobs SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                " created_at = ?, updated_at = ?, finished_at = NULL, recovered = 0"
                f" WHERE status = 'dead' AND id IN ({', '.join('?' * len(chunk))})",
                (float(now), float(now), float(now), *chunk),
            )
        return moved

    async def discard(self, job_id: int, now: float) -> bool:
        changed = await self._sql.execute(
            "UPDATE action_jobs SET status = 'discarded', updated_at = ?"
            " WHERE id = ? AND status = 'dead'",
            (float(now), job_id),
        )
        return changed == 1


def _insert_params(j: NewJob, now: float) -> tuple[Any, ...]:
    return (
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


def _retry_params(outcome: Outcome, now: float) -> tuple[Any, ...]:
    ids = json.dumps(list(outcome.invocation_ids))
    return (float(outcome.when), _dump(outcome.error), now, ids, outcome.job_id)


def _finish_params(outcome: Outcome, now: float) -> tuple[Any, ...]:
    ids = json.dumps(list(outcome.invocation_ids))
    result, error = _dump(outcome.result), _dump(outcome.error)
    return (outcome.status, result, error, now, now, ids, outcome.job_id)


def _take(candidates: Sequence[Row], left: dict[str, int], new_lane: int, limit: int) -> list[int]:
    picked: list[int] = []
    for row in candidates:
        if len(picked) == limit:
            break
        job_id, lane = int(row[0]), str(row[1])
        room = left.get(lane, new_lane)
        if room > 0:
            left[lane] = room - 1
            picked.append(job_id)
    return picked


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]


def _dump(value: Any) -> str | None:
    """A nullable JSON column's text: None stays NULL."""
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> Any:
    return json.loads(text) if text else None


def _job(row: Row) -> Job:
    finished = row["finished_at"]
    return Job(
        id=int(row["id"]),
        key=row["key"],
        namespace=row["namespace"],
        rule=row["rule"],
        action_index=int(row["action_index"]),
        kind=row["kind"],
        enforcement_id=row["enforcement_id"],
        event_source=row["event_source"],
        event_id=row["event_id"],
        status=row["status"],
        attempts=int(row["attempts"]),
        attempt_seq=int(row["attempt_seq"]),
        max_attempts=int(row["max_attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=_load(row["last_error"]),
        invocation_ids=json.loads(row["invocation_ids"] or "[]"),
        result=_load(row["result"]),
        request=row["request"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        finished_at=None if finished is None else float(finished),
        lane=row["lane"],
        resumed=bool(row["resumed"]),
    )
