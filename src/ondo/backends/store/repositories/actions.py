"""Action jobs: the records the action queue stores, and the repository contract it uses.

A job moves pending -> running -> succeeded, or back to pending with a later `next_attempt_at`
after a failed attempt, or to dead (the dead-letter queue) after its last one. `ondo dlq retry`
moves dead -> pending; `ondo dlq delete` moves dead -> discarded (the row stays, so the key still
deduplicates a replayed event and `ondo trace` still shows what happened).

Claiming is safe between processes: a job is claimed (pending -> running) by one claimer only,
even when several queues share one database.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

STATUSES = ("pending", "running", "succeeded", "dead", "discarded")

PLATFORM_CRASH = {
    "error": "the platform stopped twice in a row while this action ran (it may be what crashes"
    " the platform), so it is not run again; see the platform log, then `ondo dlq retry`",
    "reason": "platform_crash",
}


@dataclass(frozen=True)
class NewJob:
    key: str
    namespace: str
    rule: str
    action_index: int
    kind: str
    enforcement_id: str
    event_source: str
    event_id: str
    max_attempts: int
    request: str  # the ActionRequest's JSON form
    lane: str = ""


@dataclass(frozen=True)
class Job:
    id: int
    key: str
    namespace: str
    rule: str
    action_index: int
    kind: str
    enforcement_id: str
    event_source: str
    event_id: str
    status: str
    attempts: int  # attempts in this round (a DLQ retry starts a new round at 0)
    attempt_seq: int  # attempts ever made: names each attempt uniquely (its request id)
    max_attempts: int
    next_attempt_at: float
    last_error: Any
    invocation_ids: list[str]
    result: Any
    request: str
    created_at: float
    updated_at: float
    finished_at: float | None
    lane: str = ""
    # This attempt was cut off before (a stop or a crash): it may have run, in part or whole.
    resumed: bool = False

    def to_json(self, with_request: bool = False) -> dict[str, Any]:
        out = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "request" or with_request
        }
        if with_request:
            out["request"] = json.loads(self.request)
        return out

    def invocations_with(self, invocation_id: str | None) -> tuple[str, ...]:
        """This job's invocation ids with `invocation_id` appended (once; None adds nothing)."""
        ids = tuple(self.invocation_ids)
        if invocation_id is None or invocation_id in ids:
            return ids
        return (*ids, invocation_id)


@dataclass(frozen=True)
class QueueStats:
    counts: dict[str, int]  # pending, running, dead
    oldest_pending_created_at: float | None
    async_backlog: dict[tuple[str, str], int]  # (namespace, function) -> pending + running


EMPTY_STATS = QueueStats({"pending": 0, "running": 0, "dead": 0}, None, {})


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, to store: succeeded, pending again (retry at `when`), or dead.

    `invocation_ids` is the job's whole list after the attempt (`Job.invocations_with`): the
    claimer owns a running job, so nobody else changed the list since it was claimed.
    """

    job_id: int
    status: str  # succeeded | pending | dead
    invocation_ids: tuple[str, ...] = ()
    result: Any = None
    error: Any = None
    when: float = 0.0  # next_attempt_at of a retry


@dataclass(frozen=True)
class LaneClaim:
    """How many jobs of each lane a claim may take (see `JobRepository.claim`).

    `allowance` maps lane -> how many more may run; a lane not in it gets `new_lane` (its limit
    is learnt once its first job is claimed). Only the first due jobs are looked at, unless
    `look_past_full`: then, if those are all in full lanes, the jobs behind them are searched
    too (a scan of the backlog, which the queue does only now and then).
    """

    allowance: Mapping[str, int]
    new_lane: int = 1
    look_past_full: bool = True


class JobRepository(Protocol):
    """The action jobs, over one transaction (or autocommit: each call on its own)."""

    # --- the queue's own transitions ----------------------------------------------------

    async def insert(self, jobs: Sequence[NewJob], now: float) -> int:
        """Store new jobs; a key seen before is ignored. Returns how many were new.
        Called inside the caller's unit of work (the rule decision that fired them)."""
        ...

    async def settle(self, outcomes: Sequence[Outcome], now: float) -> None:
        """Store finished attempts of running jobs."""
        ...

    async def claim(
        self, now: float, limit: int, lanes: LaneClaim | None = None, owner: str = ""
    ) -> list[Job]:
        """Move up to `limit` due pending jobs to running (one more attempt each) for `owner`,
        in due order; with `lanes`, no lane over its allowance. No job is claimed by two
        callers."""
        ...

    async def next_due_at(self, skip_lanes: Collection[str] = ()) -> float | None:
        """When the next pending job falls due (ignoring lanes that are full)."""
        ...

    async def recover_running(self, now: float, owner: str = "") -> tuple[int, list[Job]]:
        """After a crash: the jobs `owner` left running (and those with no owner) go back to
        pending for the same attempt number, except those found running at a start before
        too, with no attempt finished since: they are dead-lettered (and returned), since they
        may be what crashes the platform. Jobs other owners run are left alone. Returns how
        many went back to pending, and the dead-lettered jobs."""
        ...

    async def requeue(self, job_ids: Sequence[int], now: float) -> None:
        """Jobs a clean stop cut off: back to pending for the same attempt, not counted as a
        crash."""
        ...

    async def prune(self, before: float, limit: int) -> int:
        """Forget up to `limit` of the succeeded and discarded jobs last changed before
        `before` (the oldest first); returns how many. Dead and unfinished jobs are kept
        whatever their age: someone still has to act on them."""
        ...

    # --- reading ------------------------------------------------------------------------

    async def get(self, job_id: int) -> Job | None: ...

    async def by_enforcement(self, enforcement_id: str) -> list[Job]:
        """The jobs of one rule decision, in action order."""
        ...

    async def dead(self, namespace: str, limit: int = 100, after_id: int = 0) -> list[Job]:
        """Dead-lettered jobs of a namespace, by id, after `after_id`."""
        ...

    async def queue_stats(self) -> QueueStats:
        """What /metrics shows of the queue; reads the pending, running and dead rows only."""
        ...

    async def counts(self) -> dict[str, int]:
        """Jobs per status (statuses with none are absent)."""
        ...

    # --- the dead-letter queue ----------------------------------------------------------

    async def revive(self, job_ids: Sequence[int], now: float) -> int:
        """Dead -> pending with attempts reset, due now. Returns how many moved."""
        ...

    async def discard(self, job_id: int, now: float) -> bool:
        """Dead -> discarded; False when the job is not dead."""
        ...
