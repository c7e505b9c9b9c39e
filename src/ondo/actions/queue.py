"""The durable action queue: every ActionRequest is a job row, committed with its firing.

Worker tasks (at most `workers` at a time) take due jobs, perform them through their kind, and
then mark them succeeded, schedule a retry with exponential backoff and jitter, or dead-letter
them after the last attempt or once the event is too old. Enqueue wakes the workers at once; only
retries wait for their time. This queue's jobs found `running` at start-up were cut off by a
crash: they run again as the same attempt, whose request id lets the kind see that it already
happened. Other processes' queues on the same store claim other jobs (see sql/actions.py).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from prometheus_client import CollectorRegistry

from ondo.actions.announce import action_dead_lettered
from ondo.actions.base import ActionKind, ActionKinds, ActionRequest, ActionResult
from ondo.actions.codec import request_from_json, request_to_json
from ondo.actions.destinations import destination_event
from ondo.actions.metrics import ActionMetrics
from ondo.actions.ports import AppendEvent
from ondo.backends.store.base import Repositories
from ondo.backends.store.repositories.actions import (
    STATUSES,
    Job,
    LaneClaim,
    NewJob,
    Outcome,
)
from ondo.backends.store.store import Store
from ondo.clock import Clock
from ondo.config import QueueSettings
from ondo.errors import NotFound, OndoError, StoreError
from ondo.notices import Notices

log = logging.getLogger("ondo.actions")


LANE_LIMIT_TTL_S = 5.0  # a function's concurrency is looked up again after this long
BACKLOG_SCAN_EVERY_S = 0.05
JOBS_TOPIC = "action_jobs"  # change feed: jobs became due (enqueued, revived) somewhere
STATS_EVERY_S = 1.0  # the metrics' snapshot of the queue is refreshed this often
STORE_RETRY_S = 1.0  # after the store failed, the loop tries again this much later


def backoff_delay(
    attempt: int, settings: QueueSettings, rand: Callable[[], float] = random.random
) -> float:
    """The wait after failed attempt `attempt` (1-based): exponential, capped, "equal jitter".

    The delay lies in [d/2, d] with d = min(cap, base * factor ** (attempt - 1)), so retries of
    many jobs that failed together spread out instead of arriving in one wave.
    """
    exponent = min(max(attempt - 1, 0), 64)
    full = min(settings.backoff_cap_s, settings.backoff_s * settings.backoff_factor**exponent)
    return full / 2 + rand() * full / 2


class ActionQueue:
    """Enqueue requests; workers perform them through their kinds, with retries and a DLQ.

    It receives what it uses: the store (jobs), the kinds, the clock, the metrics registry,
    the bus append for destination events, and its settings."""

    def __init__(
        self,
        store: Store,
        kinds: ActionKinds,
        clock: Clock,
        registry: CollectorRegistry,
        append: AppendEvent,
        settings: QueueSettings | None = None,
        *,
        owner: str = "",
    ) -> None:
        self.store = store
        # Names the jobs this queue runs, so that at start it takes back only its own (a
        # restarted process has the same owner: its host and data dir).
        self.owner = owner
        self.jobs = store.repos.jobs  # each call on its own (autocommit)
        self.kinds = kinds
        self.clock = clock
        self._append = append
        self.settings = settings or QueueSettings()
        self.metrics = ActionMetrics.of(registry, self.clock.now)
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._job_ids: dict[asyncio.Task[None], int] = {}  # the job each attempt performs
        # Finished attempts not stored yet: the loop stores them with its next claim, in one
        # transaction. Until then the job is `running` in the store, so a crash re-runs the
        # same attempt, which the kind recognises by its request id (nothing is done twice).
        self._outcomes: list[Outcome] = []
        self._stopping = False
        # Lanes: jobs that share a limit (an invoked function's concurrency). Jobs over the
        # limit stay pending instead of holding workers, so one slow function cannot take
        # every worker from the others.
        self._lane_limits: dict[str, tuple[int, float]] = {}  # lane -> (limit, learnt at)
        self._lane_running: collections.Counter[str] = collections.Counter()
        # Attempts still counted in their lane: an attempt leaves it once performed, before
        # its destination event and outcome are stored (they do not use the lane's resource).
        self._in_lane: dict[asyncio.Task[None], str] = {}
        self._backlog_scanned_at = 0.0
        self._detach: Callable[[], None] | None = None
        self.notices = Notices()  # platform.py hands it the platform's hub
        self._stats_task: asyncio.Task[None] | None = None

    # --- the engine's side ----------------------------------------------------------------

    async def enqueue_in(self, uow: Repositories, requests: Sequence[ActionRequest]) -> None:
        """Store the requests as jobs in the caller's unit of work (the rules engine: the
        decision that fired them). They are durable when it commits, with whatever else it
        wrote; the commit wakes the workers of every process on the store (the change feed)."""
        if not requests:
            return
        await uow.jobs.insert([self._new_job(r) for r in requests], self.clock.now())
        await uow.notify(JOBS_TOPIC, "new")

    def _new_job(self, request: ActionRequest) -> NewJob:
        return NewJob(
            key=request.key,
            namespace=request.namespace,
            rule=request.rule,
            action_index=request.action_index,
            kind=request.action.kind,
            enforcement_id=request.enforcement_id,
            event_source=str(request.event.get("source", "")),
            event_id=str(request.event.get("id", "")),
            max_attempts=self.max_attempts_of(request),
            request=request_to_json(request),
            lane=self.kinds.lane_of(request),
        )

    def max_attempts_of(self, request: ActionRequest) -> int:
        """Attempts allowed: the kind's own (async invocations: the function's `async.retries`
        + 1), else the platform's setting (ONDO_ACTION_MAX_ATTEMPTS).

        Per-action settings need a place in the rule language; `with` JSON is the payload.
        """
        # An unknown kind: performing it will dead-letter it with the error that says so.
        own = getattr(self.kinds.find(request.action.kind), "max_attempts", None)
        return int(own(request)) if own is not None else self.settings.max_attempts

    def max_age_of(self, kind: ActionKind, request: ActionRequest) -> tuple[float, str]:
        """The age after which a job is not tried again, and the setting that says so."""
        own = getattr(kind, "max_event_age_s", None)
        if own is not None:
            return float(own(request)), f"async.max_event_age of {request.action.target}"
        return self.settings.max_event_age_s, "ONDO_ACTION_MAX_AGE"

    # --- reading (ondo trace, the DLQ API) -------------------------------------------------

    async def jobs_for(self, enforcement_id: str) -> list[dict[str, Any]]:
        return [j.to_json() for j in await self.jobs.by_enforcement(enforcement_id)]

    async def job(self, job_id: int, namespace: str | None = None) -> Job:
        found = await self.jobs.get(job_id)
        if found is None or (namespace is not None and found.namespace != namespace):
            where = f" in namespace {namespace!r}" if namespace else ""
            raise NotFound(f"action job {job_id} does not exist{where}; see `ondo dlq list`")
        return found

    async def counts(self) -> dict[str, int]:
        """Jobs per status, every status present (zero when none)."""
        found = await self.jobs.counts()
        return {status: found.get(status, 0) for status in STATUSES}

    async def dead_letters(self, namespace: str, limit: int = 100, after_id: int = 0) -> list[Job]:
        return await self.jobs.dead(namespace, limit, after_id)

    # --- the dead-letter queue ---------------------------------------------------------------

    async def retry_dead(self, job_ids: Sequence[int]) -> int:
        """Put dead jobs back to pending with their attempts reset; returns how many moved.
        The workers of every process on the store hear of them at commit."""
        async with self.store.transaction() as uow:
            moved = await uow.jobs.revive(job_ids, self.clock.now())
            if moved:
                await uow.notify(JOBS_TOPIC, "revived")
        return moved

    async def discard_dead(self, job_id: int) -> bool:
        return await self.jobs.discard(job_id, self.clock.now())

    # --- the Service side ------------------------------------------------------------------

    async def start(self) -> None:
        # Our jobs left `running` were cut off by our last stop. Those of a process that died
        # and never comes back stay running: reclaiming them needs leases (a later issue).
        recovered, crash_loops = await self.jobs.recover_running(self.clock.now(), self.owner)
        if recovered:
            log.info("resuming %d actions cut off by the last stop", recovered)
        for job in crash_loops:
            await self._after_crash_loop(job)
        self._stopping = False
        self._detach = self.store.subscribe(JOBS_TOPIC, self._heard)
        self._loop = asyncio.create_task(self._run(), name="ondo-action-queue")
        self._stats_task = asyncio.create_task(self._keep_stats(), name="ondo-action-stats")

    def _heard(self, _key: str) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._detach is not None:
            self._detach()
            self._detach = None
        self._wake.set()
        if self._stats_task is not None:
            self._stats_task.cancel()
            await asyncio.gather(self._stats_task, return_exceptions=True)
            self._stats_task = None
        if self._loop is not None:
            await self._loop
            self._loop = None
        if self._inflight:
            _done, late = await asyncio.wait(
                set(self._inflight), timeout=self.settings.stop_grace_s
            )
            for task in late:  # the next start resumes them (a clean stop is not a crash)
                task.cancel()
            if late:
                await asyncio.wait(late)
            cut = [self._job_ids[t] for t in late if t in self._job_ids]
            await self.jobs.requeue(cut, self.clock.now())
        await self._store_outcomes()

    async def _after_crash_loop(self, job: Job) -> None:
        """A job found running at two starts in a row is dead-lettered by the store; here its
        kind learns the outcome (an async invocation's record ends), as after a last attempt."""
        self.metrics.dead_lettered.labels(job.kind).inc()
        action_dead_lettered(self.notices, job, job.last_error)
        log.warning(
            "action job %d (%s of rule %r) was running when the platform stopped twice in a"
            " row; it is dead-lettered instead of run again",
            job.id,
            job.kind,
            job.rule,
        )
        try:
            request = request_from_json(job.request)
            kind = self.kinds.get(job.kind)
        except OndoError:
            return
        result = ActionResult(ok=False, detail=dict(job.last_error or {}), retryable=False)
        await self._destination(kind, request, job, result)

    async def _store_outcomes(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            await self.jobs.settle(outcomes, self.clock.now())

    async def _keep_stats(self) -> None:
        """The metrics' snapshot of the queue (a collector cannot await the store)."""
        while True:
            try:
                self.metrics.stats = await self.jobs.queue_stats()
            except StoreError as exc:
                log.warning("could not read the action queue's stats: %s", exc)
            await asyncio.sleep(STATS_EVERY_S)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self.settings.workers - len(self._inflight)
            outcomes, self._outcomes = self._outcomes, []
            allowance = self._allowance()
            lanes = LaneClaim(allowance, 1, self._may_scan_backlog())
            try:
                jobs = await self._settle_and_claim(outcomes, max(free, 0), lanes)
            except StoreError as exc:  # e.g. PostgreSQL restarting: keep the outcomes, retry
                log.warning("the action queue could not reach the store (%s); retrying", exc)
                self._outcomes[:0] = outcomes
                await asyncio.sleep(STORE_RETRY_S)
                continue
            for job in jobs:
                self._learn_limit(job)
                self._spawn(job)
            if free <= 0 or len(jobs) == free:
                await self._wake.wait()  # every slot is busy: a finishing attempt wakes us
            elif not jobs:
                await self._idle([lane for lane, left in allowance.items() if left <= 0])

    async def _settle_and_claim(
        self, outcomes: Sequence[Outcome], limit: int, lanes: LaneClaim
    ) -> list[Job]:
        """Store finished attempts and claim due jobs, in one transaction."""
        if not outcomes and limit <= 0:
            return []
        now = self.clock.now()
        if not outcomes and not lanes.look_past_full:
            # A claim without the backlog scan is one statement: no BEGIN and COMMIT around it.
            return await self.jobs.claim(now, limit, lanes, self.owner)
        async with self.store.transaction() as uow:
            await uow.jobs.settle(outcomes, now)
            return await uow.jobs.claim(now, limit, lanes, self.owner)

    async def _idle(self, full_lanes: list[str]) -> None:
        """Sleep until an enqueue, a freed slot, or the next retry falls due."""
        if full_lanes:
            # Work may wait behind full lanes: a finishing job wakes us; look again soon anyway
            # rather than scanning the backlog for the next due time.
            delay = BACKLOG_SCAN_EVERY_S
        else:
            due = await self.jobs.next_due_at()
            delay = self.settings.idle_poll_s
            if due is not None:
                delay = max(0.0, min(delay, due - self.clock.now()))
        waker = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait({waker, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waker, sleeper):
                task.cancel()

    def _may_scan_backlog(self) -> bool:
        """Looking behind full lanes scans the backlog: at most every BACKLOG_SCAN_EVERY_S."""
        now = time.monotonic()
        if now - self._backlog_scanned_at < BACKLOG_SCAN_EVERY_S:
            return False
        self._backlog_scanned_at = now
        return True

    def _allowance(self) -> dict[str, int]:
        """How many more jobs each known lane may start now."""
        allowance = {"": self.settings.workers}
        for lane, (limit, _learnt) in self._lane_limits.items():
            allowance[lane] = limit - self._lane_running[lane]
        return allowance

    def _learn_limit(self, job: Job) -> None:
        """Look up (again, after a while) the limit of a claimed job's lane."""
        known = self._lane_limits.get(job.lane)
        if not job.lane or (known and time.monotonic() - known[1] < LANE_LIMIT_TTL_S):
            return
        limit: int | None = None
        try:
            kind = self.kinds.get(job.kind)
            lane_limit = getattr(kind, "lane_limit", None)
            if lane_limit is not None:
                limit = lane_limit(request_from_json(job.request))
        except OndoError:
            limit = None  # the attempt itself will report what is wrong
        self._lane_limits[job.lane] = (limit or self.settings.workers, time.monotonic())

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._attempt(job))
        self._inflight.add(task)
        self._job_ids[task] = job.id
        self._lane_running[job.lane] += 1
        self._in_lane[task] = job.lane
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not self._stopping:  # stop() still needs the ids of the attempts it cut off
            self._job_ids.pop(task, None)
        self._leave_lane(task)
        self._wake.set()

    def _leave_lane(self, task: asyncio.Task[Any] | None) -> None:
        lane = self._in_lane.pop(task, None) if task is not None else None
        if lane is not None:
            self._lane_running[lane] -= 1
            self._wake.set()

    # --- one attempt -----------------------------------------------------------------------

    async def _attempt(self, job: Job) -> None:
        try:
            request = request_from_json(job.request)
            kind = self.kinds.get(job.kind)
        except OndoError as exc:  # a stored request this version cannot read: retrying won't help
            self._bury(job, job.kind, None, {"error": str(exc)})
            return
        try:
            result = await self._perform(kind, request, job)
        finally:
            self._leave_lane(asyncio.current_task())  # the lane's next job may start now
        await self._settle(job, kind, request, result)

    async def _perform(self, kind: ActionKind, request: ActionRequest, job: Job) -> ActionResult:
        age = self.clock.now() - job.created_at
        max_age, setting = self.max_age_of(kind, request)
        if age > max_age:
            error = f"gave up: the action is {age:.0f} s old, over the limit of"
            error += f" {max_age:.0f} s ({setting})"
            return ActionResult(ok=False, detail={"error": error}, retryable=False)
        # A kind that resumes (notify: the channels not reached yet) gets the last attempt's
        # detail, which the job keeps as its last error (also after `ondo dlq retry`).
        resume = getattr(kind, "perform_after", None)
        # An attempt that never started cannot have done anything to look for first.
        first = None if job.resumed else getattr(kind, "perform_first", None)
        try:
            if resume is not None:
                return await resume(request, job.attempt_seq, job.last_error)  # type: ignore[no-any-return]
            if first is not None:
                return cast(ActionResult, await first(request, job.attempt_seq))
            return await kind.perform(request, job.attempt_seq)
        except asyncio.CancelledError:
            raise
        except OndoError as exc:
            return ActionResult(ok=False, detail={"error": str(exc), "code": exc.code})
        except Exception as exc:  # a kind's bug must not kill the worker; the job retries
            log.exception("action %s of rule %s failed unexpectedly", job.kind, job.rule)
            return ActionResult(ok=False, detail={"error": f"{type(exc).__name__}: {exc}"})

    async def _settle(
        self, job: Job, kind: ActionKind, request: ActionRequest, result: ActionResult
    ) -> None:
        outcome = "succeeded" if result.ok else "failed"
        self.metrics.performed.labels(job.kind, outcome).inc()
        if result.ok:
            await self._destination(kind, request, job, result)
            ids = job.invocations_with(result.invocation_id)
            self._store(Outcome(job.id, "succeeded", ids, dict(result.detail)))
            return
        delay = backoff_delay(job.attempts, self.settings)
        age_then = self.clock.now() + delay - job.created_at
        if (
            result.retryable
            and job.attempts < job.max_attempts
            and age_then <= self.max_age_of(kind, request)[0]
        ):
            self.metrics.retried.labels(job.kind).inc()
            when = self.clock.now() + delay
            error = dict(result.detail)
            ids = job.invocations_with(result.invocation_id)
            self._store(Outcome(job.id, "pending", ids, error=error, when=when))
            return
        await self._destination(kind, request, job, result)
        self._bury(job, job.kind, result.invocation_id, dict(result.detail))

    def _bury(self, job: Job, kind: str, invocation_id: str | None, error: Any) -> None:
        self.metrics.dead_lettered.labels(kind).inc()
        self._store(Outcome(job.id, "dead", job.invocations_with(invocation_id), error=error))
        action_dead_lettered(self.notices, job, error)
        log.warning(
            "action %s #%d of rule %s is dead-lettered as job %d after %d attempts: %s",
            kind,
            job.action_index,
            job.rule,
            job.id,
            job.attempts,
            error,
        )

    def _store(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._wake.set()

    async def _destination(
        self, kind: ActionKind, request: ActionRequest, job: Job, result: ActionResult
    ) -> None:
        own = getattr(kind, "on_outcome", None)  # async invocations: `async.on_failure`
        wanted = self.settings.destinations
        if own is None and (
            not kind.destinations or wanted == "none" or (wanted == "failed" and result.ok)
        ):
            return
        try:
            if own is not None:
                await own(request, job, result)
            else:
                event = destination_event(request, job.attempt_seq, job.attempts, result)
                await self._append(event, request.namespace)
        except asyncio.CancelledError:
            raise
        except Exception:  # the action itself is done; losing its notice must not redo it
            log.exception("could not emit the destination event of action job %d", job.id)
