"""The routing table of the http source kind: path templates, matching, and the registry.

A route's path is a template: literal segments, `{name}` (one segment; Starlette's `{name:str}`
and `{name:int}` too), and a greedy last parameter, API Gateway's `{name+}` or Starlette's
`{name:path}`, which takes the rest of the path. Routes match as on API Gateway: the most
specific wins (a literal path over parameters, more literal segments over fewer, a greedy
parameter last, a named method over ANY), whatever their order in ondo.yaml.

`HttpRoutes` is the one registry the platform creates: each running http source registers its
`RouteSet` there, and the server (the `/http/` prefix of the platform's port, or the source's
own port) looks requests up in it. It also holds what serving needs from the rest of the
platform: the token check, the synchronous invoke and the request rate limiter.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ondo.sources.replay import ReplayGuard

if TYPE_CHECKING:
    from ondo.backends.store.repositories.functions import InvocationRecord
    from ondo.events import CloudEvent
    from ondo.security.ratelimit import RateLimiter
    from ondo.security.tokens import Principal

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
Auth = Literal["public", "token", "hmac"]
_PARAM_RE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+|:str|:int|:path)?\}$")
_LITERAL_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*,;=:@%-]+$")


class PathError(ValueError):
    """Raised when a route's path template is not one ondo can match."""


@dataclass(frozen=True)
class PathTemplate:
    """A compiled route path; `specificity` orders routes as API Gateway does."""

    text: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal: bool
    specificity: tuple[int, int, int]
    shape: str  # the template with parameter names left out: equal shapes are the same route


def compile_path(text: str) -> PathTemplate:
    """The template `text` (starting with '/'), or PathError saying what is wrong with it."""
    if not text.startswith("/"):
        raise PathError("must start with '/'")
    segments = text[1:].split("/") if text != "/" else []
    parts: list[str] = []
    names: list[str] = []
    greedy = False
    for index, segment in enumerate(segments):
        found = _PARAM_RE.match(segment)
        if found is None:
            if not _LITERAL_RE.match(segment) or "{" in segment or "}" in segment:
                raise PathError(
                    f"segment {segment!r} is neither a literal nor a parameter such as {{id}},"
                    " {id:int} or a last {proxy+}"
                )
            parts.append(re.escape(segment))
            continue
        name, suffix = found[1], found[2] or ""
        if name in names:
            raise PathError(f"parameter {{{name}}} appears twice")
        names.append(name)
        if suffix in ("+", ":path"):
            if index != len(segments) - 1:
                raise PathError(f"greedy parameter {segment} must be the last segment")
            greedy = True
            parts.append(f"(?P<{name}>.+)")
        else:
            parts.append(f"(?P<{name}>[0-9]+)" if suffix == ":int" else f"(?P<{name}>[^/]+)")
    regex = re.compile("/" + "/".join(parts))
    shape = re.sub(r"\(\?P<[^>]+>", "(", regex.pattern)
    literals = len(segments) - len(names)
    # Sorted ascending: literal paths first, then more literal segments, greedy ones last.
    specificity = (1 if greedy else 0, 0 if not names else 1, -literals)
    return PathTemplate(text, regex, tuple(names), not names, specificity, shape)


@dataclass(frozen=True)
class Hmac:
    secret: bytes
    header: bytes  # lower-case, as ASGI gives header names
    algorithm: str
    format: str  # "sha256={hex}" or "{base64}"-style
    # the header holding the Unix time the sender signed with the body (replay window); None: off
    timestamp_header: bytes | None = None
    max_age_s: float = 300.0


@dataclass(frozen=True)
class Route:
    """One route of a source: `function` (sync invoke) or `event` (a type to emit)."""

    method: str
    path: PathTemplate
    auth: Auth
    function: str | None = None
    event: str | None = None
    hmac: Hmac | None = None
    id_header: bytes | None = None  # lower-case; its value is the event's id (redeliveries dedup)
    subject: str | None = None  # the event's subject template (http_subject.py); else the path

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path.text}"

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        return (*self.path.specificity, 1 if self.method == "ANY" else 0)


class Emit(Protocol):
    async def __call__(self, event: CloudEvent) -> bool: ...


@dataclass
class RouteSet:
    """The routes of one running source, and the source's own ways to emit and complain."""

    namespace: str
    source: str
    routes: Sequence[Route]
    emit: Emit
    problem: Callable[[str], None]
    _exact: dict[tuple[str, str], Route] = field(default_factory=dict, repr=False)
    _patterns: list[Route] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for route in sorted(self.routes, key=lambda r: r.sort_key):
            if route.path.literal:
                self._exact.setdefault((route.method, route.path.text), route)
            else:
                self._patterns.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `method path` and its path parameters; None when no route does."""
        for asked in (method, "ANY"):
            found = self._exact.get((asked, path))
            if found is not None:
                return found, {}
        if method == "HEAD":  # as on most servers, HEAD is answered by a GET route
            exact = self._exact.get(("GET", path))
            if exact is not None:
                return exact, {}
        for route in self._patterns:
            if route.method not in (method, "ANY") and not (
                method == "HEAD" and route.method == "GET"
            ):
                continue
            hit = route.path.regex.fullmatch(path)
            if hit is not None:
                return route, hit.groupdict()
        return None


class Authenticate(Protocol):
    async def __call__(self, token: str) -> Principal | None: ...


class SyncInvoke(Protocol):
    """Invoke `function` in `namespace` now with `payload` (JSON bytes); its final record."""

    def __call__(
        self, function: str, payload: bytes, namespace: str
    ) -> Awaitable[InvocationRecord]: ...


class FunctionInvoker(Protocol):
    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        namespace: str = ...,
        trigger: str | None = ...,
        tracked: bool = ...,
        record_after_answer: bool = ...,
    ) -> Awaitable[InvocationRecord]: ...


@dataclass(frozen=True)
class HttpInvoke:
    """`SyncInvoke` on the platform's functions, as the API's sync invoke calls them: the
    caller holds the connection, so the record is committed just after the answer."""

    functions: FunctionInvoker

    def __call__(self, function: str, payload: bytes, namespace: str) -> Awaitable[Any]:
        return self.functions.invoke(
            function,
            payload,
            namespace=namespace,
            trigger="http",
            tracked=True,
            record_after_answer=True,
        )


class HttpRoutes:
    """Every running http source's routes, by (namespace, source), and what serving needs."""

    def __init__(
        self,
        authenticate: Authenticate,
        invoke: SyncInvoke,
        max_body_bytes: int,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.authenticate = authenticate
        self.invoke = invoke
        self.max_body_bytes = max_body_bytes
        # requests by (namespace, source, peer address); None: no limit
        self.limiter = limiter
        self.replays = ReplayGuard()  # signatures of `hmac` routes with a timestamp, in window
        self._sets: dict[tuple[str, str], RouteSet] = {}

    def register(self, routes: RouteSet) -> Callable[[], None]:
        """Serve `routes` under /http/NAMESPACE/SOURCE/; returns the function that stops it."""
        key = (routes.namespace, routes.source)
        self._sets[key] = routes

        def deregister() -> None:
            if self._sets.get(key) is routes:
                del self._sets[key]

        return deregister

    def get(self, namespace: str, source: str) -> RouteSet | None:
        return self._sets.get((namespace, source))

    def registered(self) -> Mapping[tuple[str, str], RouteSet]:
        return dict(self._sets)
