"""The dead-letter queue: actions that failed their last attempt, to inspect, retry or drop."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.actions.queue import ActionQueue
from ondo.api.http import (
    answer,
    audit_note,
    decode_json,
    int_param,
    is_stored_int,
    namespace_of,
    platform_of,
    read_body,
    whole_number,
)
from ondo.errors import Conflict, ValidationError

MAX_NOTED_IDS = 100  # dead-letter ids one audit entry lists


def _queue(request: Request) -> ActionQueue:
    return platform_of(request).actions


def _job_id(request: Request) -> int:
    return whole_number(request.path_params["id"], "a dead-letter id (see `ondo dlq list`)")


async def list_dead(request: Request) -> JSONResponse:
    """Dead-lettered actions of the namespace, oldest first (`after` pages by id)."""
    limit = int_param(request, "limit", 100, 1, 1000)
    after = int_param(request, "after", 0, 0, 2**62)
    jobs = await _queue(request).dead_letters(namespace_of(request), limit, after)
    return answer({"dead_letters": [j.to_json() for j in jobs]})


async def show_dead(request: Request) -> JSONResponse:
    """One action job (any status) with its stored request."""
    job = await _queue(request).job(_job_id(request), namespace_of(request))
    return answer(job.to_json(with_request=True))


async def retry_dead(request: Request) -> JSONResponse:
    """Put a dead-lettered action back in the queue with its attempts reset."""
    queue = _queue(request)
    job = await queue.job(_job_id(request), namespace_of(request))
    if job.status != "dead":
        raise Conflict(
            f"action job {job.id} is {job.status}, not dead-lettered; only dead jobs can be retried"
        )
    await queue.retry_dead([job.id])
    return answer({"retried": [job.id]})


async def retry_all(request: Request) -> JSONResponse:
    """Retry every dead-lettered action of the namespace (or those listed in {"ids": […]})."""
    queue = _queue(request)
    namespace = namespace_of(request)
    raw = await read_body(request, 1024 * 1024)
    body: Any = await decode_json(raw) if raw.strip() else {}
    ids = body.get("ids") if isinstance(body, dict) else None
    if ids is None:
        ids = await _all_dead_ids(queue, namespace)
    elif not isinstance(ids, list) or not all(is_stored_int(i) for i in ids):
        raise ValidationError('body must be {"ids": [N, …]} or empty to retry every dead letter')
    else:
        jobs = [await queue.job(i, namespace) for i in ids]
        ids = [job.id for job in jobs if job.status == "dead"]
        skipped = [job.id for job in jobs if job.status != "dead"]
        _note_ids(request, ids)
        if skipped:
            await queue.retry_dead(ids)
            return answer({"retried": ids, "skipped_not_dead": skipped})
    _note_ids(request, ids)
    await queue.retry_dead(ids)
    return answer({"retried": ids})


def _note_ids(request: Request, ids: list[int]) -> None:
    """The dead letters a retry names in its audit entry (the first MAX_NOTED_IDS)."""
    audit_note(request, resource="dlq", ids=ids[:MAX_NOTED_IDS], count=len(ids))


async def _all_dead_ids(queue: ActionQueue, namespace: str) -> list[int]:
    ids: list[int] = []
    while True:
        page = await queue.dead_letters(namespace, 1000, ids[-1] if ids else 0)
        if not page:
            return ids
        ids.extend(j.id for j in page)


async def delete_dead(request: Request) -> JSONResponse:
    """Drop a dead-lettered action for good (its row stays as `discarded` for `ondo trace`)."""
    queue = _queue(request)
    job = await queue.job(_job_id(request), namespace_of(request))
    if not await queue.discard_dead(job.id):
        raise Conflict(f"action job {job.id} is {job.status}, not dead-lettered; nothing deleted")
    return answer({"deleted": job.id})


async def action_counts(request: Request) -> JSONResponse:
    """How many action jobs are in each state (pending, running, succeeded, dead, discarded)."""
    return answer({"jobs": await _queue(request).counts()})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/actions", action_counts, methods=["GET"]),
        Route("/v1/dlq", list_dead, methods=["GET"]),
        Route("/v1/dlq/retry", retry_all, methods=["POST"]),
        Route("/v1/dlq/{id}", show_dead, methods=["GET"]),
        Route("/v1/dlq/{id}", delete_dead, methods=["DELETE"]),
        Route("/v1/dlq/{id}/retry", retry_dead, methods=["POST"]),
    ]
