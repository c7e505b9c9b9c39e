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


def wants_progress(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def progress_stream(job: Callable[[], Awaitable[Any]]) -> StreamingResponse:
    """Run `job` with a progress listener and stream what it reports, then its outcome."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(doc: dict[str, Any] | None) -> None:  # FIFO, from the loop or a worker thread
        loop.call_soon_threadsafe(lines.put_nowait, None if doc is None else _line(doc))

    async def run() -> None:
        try:
            with progress.watched_by(lambda step: send({"progress": step})):
                send({"result": await job()})
        except OndoError as exc:
            send(error_document(exc.code, str(exc), status_of(exc)))
        except Exception as exc:
            log.exception("unexpected error in a streamed request")
            send(error_document(INTERNAL, internal_message(exc), 500))
        finally:
            send(None)

    async def body() -> AsyncIterator[bytes]:
        task = asyncio.create_task(run())
        _running.add(task)
        task.add_done_callback(_running.discard)
        while (item := await lines.get()) is not None:
            yield item

    return StreamingResponse(body(), media_type=NDJSON)
