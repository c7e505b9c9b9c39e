"""Long requests that report as they go: NDJSON lines `{"progress": …}`, then the outcome.

A client that sends `Accept: application/x-ndjson` gets a 200 at once and one JSON line per
step as it starts; the last line is `{"result": …}` or `{"error": {"code", "status",
"message"}}`, because the status line has been sent before the outcome is known.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ondo.api.errors import INTERNAL, error_document, internal_message, status_of
from ondo.deploy import progress
from ondo.errors import OndoError

NDJSON = "application/x-ndjson"
log = logging.getLogger("ondo.api")
_running: set[asyncio.Task[None]] = set()  # jobs outlive a client that hung up


OnDone = Callable[[Any, BaseException | None], Awaitable[None]]


async def _outcome(
    job: Callable[[], Awaitable[Any]], send: Callable[[dict[str, Any] | None], None]
) -> tuple[dict[str, Any], Any, BaseException | None]:
    """The last line, the result and the error of running `job` with progress reported."""
    try:
        with progress.watched_by(lambda step: send({"progress": step})):
            result = await job()
        return {"result": result}, result, None
    except OndoError as exc:
        return error_document(exc.code, str(exc), status_of(exc)), None, exc
    except Exception as exc:
        log.exception("unexpected error in a streamed request")
        return error_document(INTERNAL, internal_message(exc), 500), None, exc


async def _finish(on_done: OnDone, result: Any, error: BaseException | None) -> None:
    try:
        await on_done(result, error)
    except Exception:  # the answer has begun: its outcome still reaches the client
        log.exception("recording the outcome of a streamed request failed")


def wants_progress(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def progress_stream(
    job: Callable[[], Awaitable[Any]], on_done: OnDone | None = None
) -> StreamingResponse:
    """Run `job` with a progress listener and stream what it reports, then its outcome;
    `on_done(result, error)` runs before the last line is sent (the call's audit entry, so a
    client that reads the outcome finds the entry there)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(doc: dict[str, Any] | None) -> None:  # FIFO, from the loop or a worker thread
        loop.call_soon_threadsafe(lines.put_nowait, None if doc is None else _line(doc))

    async def run() -> None:
        try:
            last, result, error = await _outcome(job, send)
            if on_done is not None:
                await _finish(on_done, result, error)
            send(last)
        finally:
            send(None)

    async def body() -> AsyncIterator[bytes]:
        task = asyncio.create_task(run())
        _running.add(task)
        task.add_done_callback(_running.discard)
        while (item := await lines.get()) is not None:
            yield item

    return StreamingResponse(body(), media_type=NDJSON)
