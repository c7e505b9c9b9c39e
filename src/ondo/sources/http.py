"""The `http` source kind: routes that call a function (as API Gateway calls a Lambda) or turn a
request into an event, served under `/http/NAMESPACE/SOURCE/` of the platform's own port or on
a port of the source's own.

```yaml
sources:
  shop:
    kind: http
    routes:
      - {method: GET, path: "/orders/{id}", function: orders, auth: public}
      - method: POST
        path: /github
        event: github.push
        auth: hmac
        hmac: {secret: "…", header: X-Hub-Signature-256, format: "sha256={hex}"}
```

The routing table is http_routes.py, the payload and answer mapping http_payload.py, the
serving http_serve.py (see their docstrings).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ondo.durations import parse_duration
from ondo.errors import DurationError
from ondo.functions.model import NAME_RE
from ondo.sources.base import FieldPath, Settings, SourceContext, Where, no_unknown_keys
from ondo.sources.http_hmac import ALGORITHMS, DEFAULT_FORMAT, DEFAULT_HEADER, format_problem
from ondo.sources.http_routes import METHODS, Hmac, PathError, Route, RouteSet, compile_path
from ondo.sources.http_serve import SourcePortApp
from ondo.sources.http_subject import template_problem

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource

AUTHS = ("public", "token", "hmac")
SOURCE_KEYS = ("routes", "port", "host")
ROUTE_KEYS = ("method", "path", "function", "event", "id_header", "subject", "auth", "hmac")
HMAC_KEYS = ("secret", "header", "algorithm", "format", "timestamp_header", "max_age")
DEFAULT_MAX_AGE_S = 300.0
MAX_ROUTES = 1000


class HttpKind:
    name = "http"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, SOURCE_KEYS, at)
        raw = settings.get("routes")
        if not isinstance(raw, list) or not raw:
            raise at.error(("routes",), "routes must be a non-empty list of {method, path, …}")
        if len(raw) > MAX_ROUTES:
            raise at.error(("routes",), f"at most {MAX_ROUTES} routes per source")
        routes = [_route(item, ("routes", i), at) for i, item in enumerate(raw)]
        _no_duplicates(routes, at)
        out: Settings = {"routes": routes, "port": None, "host": "127.0.0.1"}
        if settings.get("port") is not None:
            port = settings["port"]
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                raise at.error(("port",), f"port must be an integer 1-65535, got {port!r}")
            out["port"] = port
        if "host" in settings:
            host = settings["host"]
            if out["port"] is None:
                raise at.error(("host",), "host applies to a source's own port: set `port` too")
            if not isinstance(host, str) or not host:
                raise at.error(("host",), "host must be an address to listen on, e.g. 0.0.0.0")
            out["host"] = host
        return out

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        registry = ctx.http_routes
        routes = [route_of(item) for item in source.spec["routes"]]
        found = RouteSet(ctx.namespace, ctx.name, routes, ctx.emit, ctx.problem)
        port = source.spec.get("port")
        if port is not None:
            await _serve_port(SourcePortApp(registry, found), source.spec["host"], port, ctx)
            return
        deregister = registry.register(found)
        try:
            ctx.connected(f"{len(routes)} routes at /http/{ctx.namespace}/{ctx.name}/")
            await asyncio.Event().wait()  # served by the platform's server until cancelled
        finally:
            deregister()


def route_of(item: Mapping[str, Any]) -> Route:
    """A stored (validated) route as the table uses it."""
    signed = item.get("hmac")
    return Route(
        method=item["method"],
        path=compile_path(item["path"]),
        auth=item["auth"],
        function=item.get("function"),
        event=item.get("event"),
        id_header=item["id_header"].lower().encode("latin-1") if "id_header" in item else None,
        subject=item.get("subject"),
        hmac=None
        if signed is None
        else Hmac(
            secret=signed["secret"].encode(),
            header=signed["header"].lower().encode("latin-1"),
            algorithm=signed["algorithm"],
            format=signed["format"],
            timestamp_header=signed["timestamp_header"].lower().encode("latin-1")
            if "timestamp_header" in signed
            else None,
            max_age_s=signed.get("max_age", DEFAULT_MAX_AGE_S),
        ),
    )


def _route(item: Any, path: FieldPath, at: Where) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise at.error(path, "a route is a mapping: {method, path, function | event, auth}")
    for key in item:
        if key not in ROUTE_KEYS:
            raise at.error((*path, key), f"unknown key {key!r}; allowed: {', '.join(ROUTE_KEYS)}")
    method = item.get("method", "ANY")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise at.error((*path, "method"), f"method must be one of {', '.join(METHODS)}")
    text = item.get("path")
    if not isinstance(text, str):
        raise at.error((*path, "path"), "path is required, e.g. /orders/{id}")
    try:
        compile_path(text)
    except PathError as exc:
        raise at.error((*path, "path"), f"path {text!r}: {exc}") from None
    route: dict[str, Any] = {"method": method.upper(), "path": text}
    route.update(_target(item, path, at))
    route.update(_auth(item, path, at))
    return route


def _target(item: Mapping[str, Any], path: FieldPath, at: Where) -> dict[str, Any]:
    function, event = item.get("function"), item.get("event")
    if (function is None) == (event is None):
        raise at.error(path, "a route needs exactly one of `function: NAME` or `event: TYPE`")
    for only in ("id_header", "subject"):
        if function is not None and only in item:
            raise at.error((*path, only), f"{only} applies to an `event:` route")
    if function is not None:
        if not isinstance(function, str) or not NAME_RE.match(function):
            raise at.error(
                (*path, "function"), f"function must name a function ({NAME_RE.pattern})"
            )
        return {"function": function}
    if not isinstance(event, str) or not event.strip() or any(c.isspace() for c in event):
        raise at.error((*path, "event"), "event must be an event type, e.g. http.request")
    target: dict[str, Any] = {"event": event}
    if "id_header" in item:
        header = item["id_header"]
        if not _header_name(header):
            raise at.error((*path, "id_header"), "id_header must be an HTTP header name")
        target["id_header"] = header
    if "subject" in item:
        target["subject"] = _subject(item["subject"], item["path"], (*path, "subject"), at)
    return target


def _subject(template: Any, route_path: str, path: FieldPath, at: Where) -> str:
    if not isinstance(template, str):
        raise at.error(path, 'subject must be a template such as "{user}" or "{body.user}"')
    why = template_problem(template, compile_path(route_path).names)
    if why is not None:
        raise at.error(path, f"subject {template!r} {why}")
    return template


def _auth(item: Mapping[str, Any], path: FieldPath, at: Where) -> dict[str, Any]:
    auth = item.get("auth", "token")
    if auth not in AUTHS:
        raise at.error((*path, "auth"), f"auth must be one of {', '.join(AUTHS)}, got {auth!r}")
    signed = item.get("hmac")
    if auth != "hmac":
        if signed is not None:
            raise at.error((*path, "hmac"), "hmac settings need `auth: hmac`")
        return {"auth": auth}
    if not isinstance(signed, dict):
        raise at.error((*path, "auth"), "auth: hmac needs `hmac: {secret: …}` on the route")
    return {"auth": auth, "hmac": _hmac(signed, (*path, "hmac"), at)}


def _hmac(signed: Mapping[str, Any], path: FieldPath, at: Where) -> dict[str, str]:
    for key in signed:
        if key not in HMAC_KEYS:
            raise at.error((*path, key), f"unknown key {key!r}; allowed: {', '.join(HMAC_KEYS)}")
    secret = signed.get("secret")
    if not isinstance(secret, str) or not secret:
        raise at.error((*path, "secret"), "secret must be the shared secret (a non-empty string)")
    header = signed.get("header", DEFAULT_HEADER)
    if not _header_name(header):
        raise at.error((*path, "header"), "header must be an HTTP header name")
    algorithm = signed.get("algorithm", "sha256")
    if algorithm not in ALGORITHMS:
        raise at.error((*path, "algorithm"), f"algorithm must be one of {', '.join(ALGORITHMS)}")
    fmt = signed.get("format", DEFAULT_FORMAT)
    why = format_problem(fmt) if isinstance(fmt, str) else "must be a string"
    if why is not None:
        raise at.error((*path, "format"), f"format {why}")
    out: dict[str, Any] = {"secret": secret, "header": header, "algorithm": algorithm}
    out["format"] = fmt
    return out | _replay_window(signed, path, at)


def _replay_window(signed: Mapping[str, Any], path: FieldPath, at: Where) -> dict[str, Any]:
    """`timestamp_header` (and `max_age`): the sender signs TIMESTAMP.BODY, and requests out of
    the window or seen before are refused. Stored only when given, so older specs stay equal."""
    stamp = signed.get("timestamp_header")
    if stamp is None:
        if "max_age" in signed:
            raise at.error((*path, "max_age"), "max_age needs timestamp_header (the replay window)")
        return {}
    if not _header_name(stamp):
        raise at.error((*path, "timestamp_header"), "timestamp_header must be an HTTP header name")
    raw = signed.get("max_age", "5m")
    try:
        max_age = parse_duration(str(raw)) if not isinstance(raw, (int, float)) else float(raw)
    except DurationError as exc:
        raise at.error((*path, "max_age"), str(exc)) from None
    if not 1 <= max_age <= 86400 or isinstance(raw, bool):
        raise at.error((*path, "max_age"), "max_age must be 1s to 24h, e.g. 5m")
    return {"timestamp_header": stamp, "max_age": max_age}


def _header_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not any(c in value for c in ": \t\r\n")


def _no_duplicates(routes: list[dict[str, Any]], at: Where) -> None:
    seen: dict[tuple[str, str], int] = {}
    for index, route in enumerate(routes):
        key = (route["method"], compile_path(route["path"]).shape)
        if key in seen:
            raise at.error(
                ("routes", index, "path"),
                f"{route['method']} {route['path']} is the same route as routes[{seen[key]}]",
            )
        seen[key] = index


async def _serve_port(app: SourcePortApp, host: str, port: int, ctx: SourceContext) -> None:
    """Serve `app` on host:port until cancelled (the uvicorn server the platform uses)."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the platform's own server handles SIGINT/SIGTERM, and stops us

    with _listening(host, port) as sock:
        config = uvicorn.Config(
            app, lifespan="off", log_config=None, server_header=False, timeout_graceful_shutdown=5
        )
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        ctx.connected(f"listening on http://{host}:{port}/")
        try:
            await asyncio.shield(serving)
        finally:
            server.should_exit = True
            await asyncio.wait({serving})


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        yield sock
    finally:
        sock.close()


KIND = HttpKind()
