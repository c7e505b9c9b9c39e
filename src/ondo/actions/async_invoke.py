"""Async invocations (`ondo invoke --async`, `?mode=async`) as jobs of the action queue.

Lambda's semantics: a failed attempt is retried `async.retries` times (0-2, default 2) with the
queue's backoff, never once the event is older than `async.max_event_age` (60 s - 6 h, default
6 h); then the job is dead-lettered (`ondo dlq`) and, if the function says `async.on_failure`,
a Lambda-style failure record goes there: `invoke FUNCTION` runs that function asynchronously
with it, `emit TYPE` appends it to the bus as an event of that type.

Every attempt runs under the invocation's own id (the one the 202 answer gave), like Lambda's
retries; its record shows the latest attempt and its number (`attempt`). An attempt cut off by
a crash runs again as the same attempt, and finds its record if it had already finished.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ondo.actions.base import ActionRequest, ActionResult, derived_id
from ondo.actions.invoke import concurrency_of, lane_of_function, result_of
from ondo.actions.model import Action
from ondo.actions.ports import AppendEvent, Functions
from ondo.backends.store.base import Repositories
from ondo.backends.store.repositories.functions import (
    FINAL_STATUSES,
    FunctionConfig,
    InvocationRecord,
)
from ondo.backends.store.store import Store
from ondo.clock import Clock
from ondo.errors import NotFound, RuleError
from ondo.events import HOPS_EXTENSION, CloudEvent
from ondo.functions.service import PLATFORM_CRASH_ERROR
from ondo.ids import uuid7

if TYPE_CHECKING:
    from ondo.backends.store.repositories.actions import Job

WORD = "invoke-async"  # the job kind; not an action a rule can name
SOURCE = "ondo/functions/"
MAX_DESTINATION_HOPS = 4  # on_failure invocations chained deeper than this get no destination

# The action queue's `enqueue_in`: jobs stored in the caller's unit of work.
Enqueue = Callable[[Repositories, Sequence[ActionRequest]], Awaitable[None]]


def _request(
    record: InvocationRecord, payload: Any, version: int | None, cfg: FunctionConfig, hops: int
) -> ActionRequest:
    args = {
        "payload": payload,
        "version": version,
        "retries": cfg.async_retries,
        "max_event_age": cfg.async_max_event_age,
        "on_failure": cfg.async_on_failure,
        "hops": hops,
        "trigger": record.trigger,  # so that a first attempt need not read the record
    }
    return ActionRequest(
        key=f"async:{record.id}",
        namespace=record.namespace,
        rule="",
        action_index=0,
        action=Action(kind=WORD, target=record.function, args=args),
        event={"source": SOURCE + record.function, "id": record.id, "type": WORD},
        enforcement_id=record.id,
    )


class AsyncInvoke:
    """Accepts async invocations (`submit`) and performs them as jobs of the action queue."""

    kind = WORD
    destinations = True

    def __init__(
        self,
        functions: Functions,
        store: Store,
        enqueue: Enqueue,
        append: AppendEvent,
        clock: Clock,
    ) -> None:
        self._functions = functions
        self._store = store
        self._enqueue = enqueue
        self._append = append
        self._clock = clock

    async def submit(
        self,
        name: str,
        payload: Any,
        *,
        namespace: str = "default",
        version: int | None = None,
        trigger: str | None = "api",
        invocation_id: str | None = None,
        hops: int = 0,
    ) -> InvocationRecord:
        """Accept an async invocation of `name` with the JSON value `payload`: its `queued`
        record and its job are stored in one transaction before this returns."""
        fv = await self._functions.get_version(name, namespace, version)
        record = InvocationRecord(
            id=invocation_id or uuid7(),
            namespace=namespace,
            function=name,
            version=fv.version,
            status="queued",
            mode="async",
            created_at=self._clock.now(),
            trigger=trigger,
        )
        request = _request(record, payload, version, fv.config, hops)
        async with self._store.transaction() as uow:
            await uow.invocations.record_new(record)
            await self._enqueue(uow, [request])
        return record

    def validate(self, action: Action, namespace: str) -> None:
        raise RuleError(f"{WORD} is not a rule action; write `invoke FUNCTION`")

    def lane(self, request: ActionRequest) -> str:
        """The lane of the function's rule invocations too: they share its concurrency."""
        return lane_of_function(request)

    def lane_limit(self, request: ActionRequest) -> int | None:
        return concurrency_of(self._functions, request)

    def max_attempts(self, request: ActionRequest) -> int:
        return int(_args(request)["retries"]) + 1

    def max_event_age_s(self, request: ActionRequest) -> float:
        return float(_args(request)["max_event_age"])

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        before = await self._functions.invocation(str(request.event["id"]))
        if before is not None and before.attempt == attempt and _finished(before):
            return result_of(before)  # this attempt ran to its end before a crash
        return await self._invoke(request, attempt, before.trigger if before else "api")

    async def perform_first(self, request: ActionRequest, attempt: int) -> ActionResult:
        """An attempt that never started (see ActionKind): its trigger is in the request,
        unless a version that did not store it there enqueued the job."""
        args = _args(request)
        if "trigger" not in args:
            return await self.perform(request, attempt)
        trigger = args["trigger"]
        return await self._invoke(request, attempt, trigger if isinstance(trigger, str) else None)

    async def _invoke(
        self, request: ActionRequest, attempt: int, trigger: str | None
    ) -> ActionResult:
        invocation_id = str(request.event["id"])
        args = _args(request)
        try:
            record = await self._functions.invoke(
                request.action.target,
                json.dumps(args["payload"], separators=(",", ":")).encode(),
                namespace=request.namespace,
                version=args["version"],
                trigger=trigger,
                request_id=invocation_id,
                wait_for_slot=True,
                tracked=True,  # the job row tracks the attempt; a crash re-runs it
                attempt=attempt,
            )
        except NotFound as exc:  # deleted since: retrying won't help
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        return result_of(record)

    async def on_outcome(self, request: ActionRequest, job: Job, result: ActionResult) -> None:
        """After the last attempt (the queue calls this instead of its destination events):
        a record left unfinished ends `failed`; the failure record goes to
        `async.on_failure`, if any."""
        if not result.ok:
            await self._end_unfinished_record(request, result)
        args = _args(request)
        target = args.get("on_failure")
        if result.ok or not target or int(args.get("hops", 0)) >= MAX_DESTINATION_HOPS:
            return
        verb, _, name = str(target).partition(" ")
        record = failure_record(self._clock.now(), request, job, result)
        if verb == "emit":
            await self._append(_failure_event(request, job, name, record), request.namespace)
            return
        await self.submit(
            name.strip(),
            record,
            namespace=request.namespace,
            trigger=f"on_failure:{request.action.target}",
            invocation_id=derived_id(f"{request.key}:on-failure:{job.attempt_seq}"),
            hops=int(args.get("hops", 0)) + 1,
        )

    async def _end_unfinished_record(self, request: ActionRequest, result: ActionResult) -> None:
        """An invocation given up while its record is not final would stay `queued` or
        `running` for ever: no attempt ran (too old, function deleted), or the platform crashed
        twice in a row while it ran. Its record ends `failed` with the reason."""
        record = await self._functions.invocation(str(request.event["id"]))
        if record is None or record.status not in ("queued", "running"):
            return
        if result.detail.get("reason") == "platform_crash":
            error = dict(PLATFORM_CRASH_ERROR)
        else:
            why = str(result.detail.get("error", "gave up"))
            error = {"errorMessage": why, "errorType": "Ondo.NotRun", "stackTrace": []}
        ended = replace(record, status="failed", error=error, finished_at=self._clock.now())
        await self._functions.record_final(ended)


def failure_record(
    now: float, request: ActionRequest, job: Job, result: ActionResult
) -> dict[str, Any]:
    """Lambda's destination record for an async invocation that failed for the last time."""
    args = _args(request)
    age = now - job.created_at
    if result.retryable and job.attempts >= job.max_attempts:
        condition = "RetriesExhausted"
    elif result.retryable or age > float(args["max_event_age"]):
        condition = "EventAgeExceeded"  # now, or by the time the next attempt would be due
    else:
        condition = "NotRetryable"  # e.g. the function was deleted
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "requestContext": {
            "requestId": request.event["id"],
            "function": request.action.target,
            "namespace": request.namespace,
            "condition": condition,
            "approximateInvokeCount": job.attempts,
            "ageSeconds": round(age, 3),
        },
        "requestPayload": args["payload"],
        "responseContext": {"functionError": result.detail.get("status", "failed")},
        "responsePayload": dict(result.detail),
    }


def _failure_event(
    request: ActionRequest, job: Job, event_type: str, record: dict[str, Any]
) -> CloudEvent:
    return CloudEvent(
        id=derived_id(request.key, f"failed-{job.attempt_seq}"),
        source=SOURCE + request.action.target,
        type=event_type,
        subject=str(request.event["id"]),
        datacontenttype="application/json",
        data=record,
        extensions={HOPS_EXTENSION: int(_args(request).get("hops", 0)) + 1},
    )


def _args(request: ActionRequest) -> dict[str, Any]:
    args = request.action.args
    return dict(args) if isinstance(args, Mapping) else {}


def _finished(record: InvocationRecord) -> bool:
    return record.status in FINAL_STATUSES and record.status != "interrupted"
