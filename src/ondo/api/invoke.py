"""Invocation over HTTP: the one answer both ways in share, and the fast path for the busiest call.

`POST /v1/functions/{name}/invoke` is the route a platform of functions lives on, and at warm
sandboxes the framework's own work per request (request and response objects, the routing
table, exception middleware) is a large share of the time. `InvokeFastPath` serves the plain
case, a sync call with no query string from an authenticated caller, straight from ASGI
messages; anything else (async mode, a version, a namespace, no or a bad token) passes on
to the Starlette app unchanged, where the same `run_invoke` answers it.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from ondo.api.auth import authenticate, namespace_asked, principal_key, rate_limited
from ondo.api.errors import (
    INTERNAL,
    Answer,
    answer_for,
    error_answer,
    internal_message,
    render,
    send_answer,
)
from ondo.api.http import check_declared_length, check_running_length, decode_json
from ondo.errors import ConcurrencyExhausted, OndoError
from ondo.functions.model import InvocationRecord
from ondo.platform import Platform
from ondo.security.policy import Permission, allows
from ondo.security.tokens import Principal

log = logging.getLogger("ondo.api")


_INVOKE_PATH = re.compile(r"/v1/functions/([^/]+)/invoke")


async def run_invoke(
    platform: Platform,
    name: str,
    body: bytes,
    *,
    mode: str = "sync",
    namespace: str = "default",
    version: int | None = None,
) -> Answer:
    """Status, headers and JSON body for an invocation of `name` with `body` as its event."""
    payload = body if body.strip() else b"null"
    # The function gets the bytes; decoding them here refuses what its bootstrap cannot read.
    event = await decode_json(payload, "event (request body)")
    if mode == "async":  # a job of the action queue: retries, DLQ, on_failure (see there)
        record = await platform.async_invoke.submit(
            name, event, namespace=namespace, version=version, trigger="api"
        )
        content = render({"id": record.id, "status": record.status})
        return 202, {"X-Ondo-Invocation-Id": record.id}, content
    try:
        # The HTTP caller tracks a sync call (it sees the connection drop if we crash), so the
        # `running` row is written only for calls that outlast RUNNING_ROW_AFTER_S, and the
        # final record is committed just after the answer leaves (see RecordWriter).
        record = await platform.functions.invoke(
            name,
            payload,
            namespace=namespace,
            version=version,
            trigger="api",
            tracked=True,
            record_after_answer=True,
        )
    except ConcurrencyExhausted as exc:
        return answer_for(exc)
    return _sync_answer(record)


def _sync_answer(record: InvocationRecord) -> Answer:
    headers = {
        "X-Ondo-Invocation-Id": record.id,
        "X-Ondo-Function-Version": str(record.version),
    }
    if record.status != "succeeded":
        headers["X-Ondo-Function-Error"] = (
            "Unhandled" if record.status == "failed" else record.status
        )
        return 200, headers, render(record.error or {})
    content = record.result_json
    if content is None:
        content = render(record.result)
    return 200, headers, content


class _Disconnected(Exception):
    """The client went away before its request body arrived: nobody to answer."""


class InvokeFastPath:
    """ASGI middleware: plain sync invocations answered without the framework (see above)."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            match = _INVOKE_PATH.fullmatch(scope["path"])
            principal = await authenticate(self.platform, scope) if match is not None else None
            if (
                match is not None
                and principal is not None
                # one the caller may not make is answered by the app's guard (api/permissions.py)
                and allows(principal, Permission.INVOKE, f"function:{match[1]}")
            ):
                try:
                    answer = await self._limited(principal, scope, receive, match[1])
                except _Disconnected:
                    return
                await send_answer(send, answer)
                return
        await self.app(scope, receive, send)

    async def _limited(
        self, principal: Principal, scope: Scope, receive: Receive, name: str
    ) -> Answer:
        limiter = self.platform.rate_limits.principals
        key = principal_key(principal)
        wait = limiter.take(key)
        if wait:
            return answer_for(rate_limited(limiter, key, wait))
        namespace = namespace_asked(principal, scope)  # the caller's own: no query
        return await self._answer(scope, receive, name, namespace)

    async def _answer(self, scope: Scope, receive: Receive, name: str, namespace: str) -> Answer:
        try:
            body = await _read_body(scope, receive, self.platform.config.max_body_bytes)
            return await run_invoke(self.platform, name, body, namespace=namespace)
        except OndoError as exc:
            return answer_for(exc)
        except _Disconnected:
            raise
        except Exception as exc:  # as the app's own handler for unexpected errors answers
            log.exception("unexpected error in POST %s", scope["path"])
            return error_answer(500, INTERNAL, internal_message(exc))


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for header, value in scope["headers"]:
        if header == b"content-length":
            check_declared_length(value.decode("latin-1"), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        check_running_length(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
