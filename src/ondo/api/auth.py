"""Bearer-token authentication, request rates, and the namespace each call acts in.

Every path but PUBLIC_PATHS needs a valid token. `/metrics` takes the platform admin's tokens
or the scrape token (security/scrape.py). Each authenticated call takes a token from its
principal's rate bucket, each call without a valid token from its address's; an empty bucket
is answered 429 with `Retry-After` (security/ratelimit.py). A valid token is never refused for
its address's bucket: behind a proxy every caller shares one address, and a token cannot be
guessed (256 random bits).

The namespace a request names (`?namespace=`) is resolved here, once, by
`security.tenancy.resolve_namespace`, and put in scope["ondo.namespace"]: routes read it only
from there (`api.http.namespace_of`), so no route can skip the check.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from ondo.api.errors import answer_for, send_answer
from ondo.api.permissions import action_of, principal_source
from ondo.errors import NotFound, OndoError, RateLimited, Unauthorized
from ondo.platform import Platform
from ondo.security.ratelimit import RateLimiter
from ondo.security.tenancy import NAMESPACE_RE, resolve_namespace
from ondo.security.tokens import Principal, digest_of

DEFAULT_NAMESPACE = "default"
# Answer anyone: liveness, and the API's description (it holds no data; docs/security.md).
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
METRICS_PATH = "/metrics"
# Checked here rather than by api/permissions.py: a scrape token is no principal.
UNGUARDED_PATHS = PUBLIC_PATHS | {METRICS_PATH}
NAMESPACE_PARAM = "namespace"


class BearerAuth:
    """Puts the caller's Principal and namespace in the scope, or answers 401 / 400 / 404."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._caller(scope)
        except OndoError as exc:
            await send_answer(send, answer_for(exc))
            return
        if principal is not None:
            try:
                scope["ondo.namespace"] = namespace_asked(principal, scope)
            except OndoError as exc:
                await self._refused(scope, principal, exc)
                await send_answer(send, answer_for(exc))
                return
            scope["ondo.principal"] = principal
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Principal | None:
        """The caller's principal (None on a path that needs none), or the error to answer."""
        limits = self.platform.rate_limits
        path = scope["path"]
        if path in PUBLIC_PATHS:
            check_rate(limits.anonymous, peer_of(scope))
            return None
        token = _bearer(scope)
        if path == METRICS_PATH and token and self.platform.scrape_token.matches(token):
            return None
        principal = await self.platform.tokens.authenticate(token) if token else None
        if principal is None:
            check_rate(limits.anonymous, peer_of(scope))  # a flood is refused, not audited
            why = "unknown token" if token else "missing bearer token"
            message = f"{why}: send 'Authorization: Bearer <token>'; the admin token is in"
            error = Unauthorized(f"{message} <data-dir>/admin.token")
            await self._unauthenticated(scope, error)
            raise error
        check_rate(limits.principals, principal_key(principal))
        if path == METRICS_PATH and not principal.is_admin:
            refused = NotFound(
                f"no endpoint GET {METRICS_PATH} for {principal.name!r}: it is read with the"
                " platform admin's token or the scrape token (<data-dir>/metrics.token)"
            )
            await self._refused(scope, principal, refused)
            raise refused
        return principal

    async def _unauthenticated(self, scope: Scope, error: OndoError) -> None:
        """Audit a call without a valid token: by its peer address (flood-controlled), with at
        most a short hash of the token it sent, never the token."""
        token = _bearer(scope)
        peer = peer_of(scope)
        detail = {"error": error.code, "peer": peer}
        if token:
            detail["token_sha256"] = digest_of(token)[:8]
        await self.platform.audit.refused(
            f"peer:{peer}",
            _named_namespace(scope),
            "",
            action_of(scope["method"], scope["path"]),
            scope["path"][:200],
            **detail,
        )

    async def _refused(self, scope: Scope, principal: Principal, error: OndoError) -> None:
        """Audit a call refused at the door (a namespace the caller may not act in or a
        malformed one, /metrics with a token that may not read it), in the caller's own
        namespace."""
        asked = QueryParams(scope["query_string"]).getlist(NAMESPACE_PARAM)
        await self.platform.audit.refused(
            principal_source(principal),
            principal.namespace,
            principal.name,
            action_of(scope["method"], scope["path"]),
            scope["path"][:200],
            error=error.code,
            asked_namespace=[name[:80] for name in asked[:3]],
        )


def peer_of(scope: Scope) -> str:
    """The caller's address as the server saw it (a proxy's, behind one)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def principal_key(principal: Principal) -> tuple[str, str]:
    """A principal's rate bucket: all its tokens share it."""
    return (principal.namespace, principal.name)


def check_rate(limiter: RateLimiter, key: Hashable) -> None:
    """Take a token from `key`'s bucket, or raise RateLimited."""
    wait = limiter.take(key)
    if wait:
        raise rate_limited(limiter, key, wait)


def rate_limited(limiter: RateLimiter, key: Hashable, wait: int) -> RateLimited:
    who = f"principal {key[1]!r}" if isinstance(key, tuple) else "this address without a token"
    return RateLimited(
        f"too many requests from {who} (limit {limiter.limit}); retry in {wait}s. The"
        " operator sets the limits with `ondo up --rate-limit KIND=RATE[:BURST]`",
        wait,
    )


def _named_namespace(scope: Scope) -> str:
    """Where an unauthenticated call's entry goes: the namespace it named if that is a valid
    name (its admins see who knocked), else the default one."""
    asked = QueryParams(scope["query_string"]).get(NAMESPACE_PARAM, "")
    return asked if NAMESPACE_RE.match(asked) else DEFAULT_NAMESPACE


async def authenticate(platform: Platform, scope: Scope) -> Principal | None:
    """The caller a request's bearer token names, or None (no token, or an unknown one)."""
    token = _bearer(scope)
    return await platform.tokens.authenticate(token) if token else None


def namespace_asked(principal: Principal, scope: Scope) -> str:
    """The namespace this request acts in (the one it names, if the caller may act there)."""
    asked = QueryParams(scope["query_string"]).getlist(NAMESPACE_PARAM)
    return resolve_namespace(principal, asked)


def _bearer(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""
