"""Bearer-token authentication, and the namespace each call acts in, for every non-public path.

The namespace a request names (`?namespace=`) is resolved here, once, by
`security.tenancy.resolve_namespace`, and put in scope["ondo.namespace"]: routes read it only
from there (`api.http.namespace_of`), so no route can skip the check.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from ondo.api.errors import answer_for, send_answer
from ondo.api.permissions import action_of, principal_source
from ondo.errors import OndoError, Unauthorized
from ondo.platform import Platform
from ondo.security.tenancy import NAMESPACE_RE, resolve_namespace
from ondo.security.tokens import Principal, digest_of

DEFAULT_NAMESPACE = "default"
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})
NAMESPACE_PARAM = "namespace"


class BearerAuth:
    """Puts the caller's Principal and namespace in the scope, or answers 401 / 400 / 404."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        principal = await authenticate(self.platform, scope)
        if principal is None:
            why = "unknown token" if _bearer(scope) else "missing bearer token"
            message = f"{why}: send 'Authorization: Bearer <token>'; the admin token is in"
            error = Unauthorized(f"{message} <data-dir>/admin.token")
            await self._unauthenticated(scope, error)
            await send_answer(send, answer_for(error))
            return
        try:
            scope["ondo.namespace"] = namespace_asked(principal, scope)
        except OndoError as exc:
            await self._refused(scope, principal, exc)
            await send_answer(send, answer_for(exc))
            return
        scope["ondo.principal"] = principal
        await self.app(scope, receive, send)

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
        """Audit a call naming a namespace the caller may not act in (or a malformed one),
        in the caller's own namespace."""
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
