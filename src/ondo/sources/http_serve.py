"""Serving the http sources' routes, straight from ASGI messages (no framework layer).

Two ways in share `RouteServer.serve`:

- `HttpPrefix`, in front of the platform's own app: `/http/NAMESPACE/SOURCE/PATH` is PATH of
  that source's routes. Every API path starts with `/v1/` (or is /healthz, /metrics,
  /openapi.json), so `/http/` cannot collide with one; naming the namespace keeps two
  namespaces' sources of the same name apart, as everything else in ondo does. Anything else
  passes on to the API unchanged, with its bearer-token check.
- `SourcePortApp`, the app of a source's own port (`port:`): PATH is the whole path.

Answers are API Gateway's: `{"message": "Not Found"}` and the like, since the callers are the
users' clients, not ondo's CLI.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ondo.errors import ConcurrencyExhausted, EventError, OndoError, PayloadTooLarge
from ondo.events import CloudEvent
from ondo.ids import uuid7
from ondo.security.policy import Permission, allows
from ondo.security.tenancy import resolve_namespace
from ondo.security.tokens import Principal
from ondo.sources.http_hmac import verified
from ondo.sources.http_payload import (
    INTERNAL_ERROR,
    JSON_TYPE,
    Answer,
    BadLambdaAnswer,
    HttpRequest,
    RequestContext,
    body_of,
    header_values,
    lambda_answer,
    message_answer,
    payload_v2,
    query_values,
)
from ondo.sources.http_routes import HttpRoutes, Route, RouteSet
from ondo.sources.http_subject import render_subject

log = logging.getLogger("ondo.sources.http")

PREFIX = "/http/"
NOT_FOUND = message_answer(404, "Not Found")
UNAUTHORIZED = message_answer(401, "Unauthorized")
FORBIDDEN = message_answer(403, "Forbidden")
TOO_LARGE = message_answer(413, "Request Entity Too Large")
_BUSY = message_answer(429, "Too Many Requests")
TOO_MANY = (_BUSY[0], [*_BUSY[1], (b"retry-after", b"1")], _BUSY[2])  # the function is busy
UNAVAILABLE = message_answer(503, "Service Unavailable")
# Credentials a route's function or event never sees: the ondo token, and cookies in events.
TOKEN_HEADERS = frozenset({b"authorization"})
EVENT_HIDDEN = frozenset({b"authorization", b"cookie"})


class _Disconnected(Exception):
    """The client left before its body arrived: nobody to answer."""


class _TooLarge(Exception):
    """The body is over the platform's request size limit."""


class RouteServer:
    """Answers one request for one source's routes (see the module doc)."""

    def __init__(self, routes: HttpRoutes) -> None:
        self.routes = routes

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, found: RouteSet, path: str, raw: str
    ) -> None:
        try:
            answer = await self._answer(scope, receive, found, path or "/", raw or "/")
        except _Disconnected:
            return
        await send_answer(send, answer)

    async def _answer(
        self, scope: Scope, receive: Receive, found: RouteSet, path: str, raw: str
    ) -> Answer:
        client = scope.get("client")
        peer = client[0] if client else ""
        limited = self._rate_limited(found, peer)
        if limited is not None:
            return limited
        method = scope["method"]
        hit = found.match(method, path)
        if hit is None:
            return NOT_FOUND
        route, params = hit
        try:
            body = await _read_body(scope, receive, self.routes.max_body_bytes)
        except _TooLarge:
            return TOO_LARGE
        refused = await self._refused(route, found.namespace, scope["headers"], body)
        if refused is not None:
            return refused
        request = HttpRequest(
            method=method,
            path=path,
            raw_path=raw,
            query=scope["query_string"],
            headers=scope["headers"],
            body=body,
            source_ip=peer,
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        try:
            if route.function is not None:
                return await self._invoke(found, route, request, params)
            return await self._emit(found, route, request, params)
        except Exception as exc:  # never a traceback to the client; the log and status say it
            log.exception("http source %s/%s: %s %s", found.namespace, found.source, method, path)
            found.problem(f"{route.route_key}: unexpected {type(exc).__name__}: {exc}")
            return message_answer(500, "Internal Server Error")

    def _rate_limited(self, found: RouteSet, peer: str) -> Answer | None:
        """429 with Retry-After when this address has used up its rate on this source."""
        limiter = self.routes.limiter
        wait = limiter.take((found.namespace, found.source, peer)) if limiter is not None else 0
        if not wait:
            return None
        status, head, content = _BUSY
        return status, [*head, (b"retry-after", str(wait).encode())], content

    async def _refused(
        self, route: Route, namespace: str, headers: Any, body: bytes
    ) -> Answer | None:
        if route.auth == "public":
            return None
        if route.auth == "hmac":
            assert route.hmac is not None
            good = verified(route.hmac, headers, body, time.time(), self.routes.replays)
            return None if good else UNAUTHORIZED
        token = _bearer(headers)
        principal = await self.routes.authenticate(token) if token else None
        if principal is None:
            status, head, content = UNAUTHORIZED
            return status, [*head, (b"www-authenticate", b'Bearer realm="ondo"')], content
        try:
            resolve_namespace(principal, [namespace])
        except OndoError:  # a token of another namespace
            return FORBIDDEN
        return None if may_use(principal, route) else FORBIDDEN

    async def _invoke(
        self, found: RouteSet, route: Route, request: HttpRequest, params: dict[str, str]
    ) -> Answer:
        assert route.function is not None
        context = RequestContext(
            found.namespace, found.source, route.route_key, uuid7(), time.time()
        )
        hide = TOKEN_HEADERS if route.auth == "token" else frozenset()
        event = payload_v2(request, context, params, hide)
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            record = await self.routes.invoke(route.function, payload, found.namespace)
        except ConcurrencyExhausted:
            return TOO_MANY
        except OndoError as exc:  # the function is gone, the runtime is away, …
            found.problem(f"{route.route_key}: function {route.function!r}: {exc}")
            return INTERNAL_ERROR
        if record.status != "succeeded":
            return INTERNAL_ERROR  # the invocation record says why (`ondo logs`)
        try:
            return lambda_answer(record.result, record.result_json)
        except BadLambdaAnswer as exc:
            found.problem(f"{route.route_key}: function {route.function!r} answered badly: {exc}")
            return INTERNAL_ERROR

    async def _emit(
        self, found: RouteSet, route: Route, request: HttpRequest, params: dict[str, str]
    ) -> Answer:
        assert route.event is not None
        try:
            data = event_data(request, route, params)
        except ValueError as exc:
            return message_answer(400, f"the body is not valid JSON: {exc}")
        attributes: dict[str, Any] = {}
        if route.id_header is not None:  # the sender's delivery id: a redelivery is a duplicate
            sent = [v for k, v in request.headers if k == route.id_header]
            if len(sent) != 1 or not sent[0].strip():
                name = route.id_header.decode("latin-1")
                return message_answer(400, f"send one {name} header: it is the event's id")
            attributes["id"] = sent[0].strip().decode("latin-1")
        try:
            subject = (
                request.path
                if route.subject is None
                else render_subject(route.subject, params, data["body"])
            )
        except ValueError as exc:
            return message_answer(400, str(exc))
        try:
            event = CloudEvent(
                source=found.source, type=route.event, subject=subject, data=data, **attributes
            )
            fresh = await found.emit(event)
        except PayloadTooLarge as exc:  # says how large it is and what the limit is
            return message_answer(413, str(exc))
        except EventError as exc:
            return message_answer(400, str(exc))
        except OndoError as exc:  # the bus is away: the sender should retry
            found.problem(f"{route.route_key}: could not append the event: {exc}")
            return UNAVAILABLE
        return 202, [JSON_TYPE], json.dumps({"id": event.id, "duplicate": not fresh}).encode()


def event_data(request: HttpRequest, route: Route, params: dict[str, str]) -> dict[str, Any]:
    """The `data` of an `event:` route's event (ValueError: a JSON body that does not parse)."""
    headers = header_values(request.headers, EVENT_HIDDEN)
    data: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "route": route.route_key,
        "pathParameters": params,
        "query": query_values(request.query),
        "headers": headers,
    }
    if not request.body:
        data["body"] = None
    elif "json" in headers.get("content-type", ""):
        data["body"] = json.loads(request.body)
    else:
        data["body"], encoded = body_of(request.body)
        if encoded:
            data["isBase64Encoded"] = True
    return data


class HttpPrefix:
    """ASGI middleware: `/http/NAMESPACE/SOURCE/...` served by the routes, the rest by `app`."""

    def __init__(self, app: ASGIApp, routes: HttpRoutes) -> None:
        self.app = app
        self.server = RouteServer(routes)
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        _, _, *parts = scope["path"].split("/", 4)
        found = self.routes.get(parts[0], parts[1]) if len(parts) >= 2 else None
        if found is None:
            await send_answer(send, NOT_FOUND)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_rest = raw.split(b"/", 4)[4:]
        raw_text = "/" + raw_rest[0].decode("latin-1") if raw_rest else "/"
        path = "/" + parts[2] if len(parts) > 2 else "/"
        await self.server.serve(scope, receive, send, found, path, raw_text)


class SourcePortApp:
    """The ASGI app of a source's own port: its routes at the root."""

    def __init__(self, routes: HttpRoutes, found: RouteSet) -> None:
        self.server = RouteServer(routes)
        self.found = found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off on this server; websockets are not served
        raw = scope.get("raw_path") or scope["path"].encode()
        await self.server.serve(
            scope, receive, send, self.found, scope["path"], raw.decode("latin-1")
        )


async def send_answer(send: Send, answer: Answer) -> None:
    status, headers, body = answer
    head = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _bearer(headers: Any) -> str:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def may_use(principal: Principal, route: Route) -> bool:
    """Whether a token may do what the route does, as the API would let it: invoke the route's
    function, or emit its event type (a function's token only what its `permissions` list)."""
    if route.function is not None:
        return allows(principal, Permission.INVOKE, f"function:{route.function}")
    return allows(principal, Permission.EMIT, f"type:{route.event}")
