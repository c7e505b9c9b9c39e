"""Bearer-token authentication for every endpoint except the public ones."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from ondo.platform import Platform
from ondo.security.tokens import Principal

PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})


class BearerAuth:
    """Puts the caller's Principal in scope["ondo.principal"], or answers 401."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        principal = authenticate(self.platform, scope)
        if principal is None:
            why = "unknown token" if _bearer(scope) else "missing bearer token"
            await _unauthorized(send, why)
            return
        scope["ondo.principal"] = principal
        await self.app(scope, receive, send)


def authenticate(platform: Platform, scope: Scope) -> Principal | None:
    """The caller a request's bearer token names, or None (no token, or an unknown one)."""
    token = _bearer(scope)
    return platform.tokens.authenticate(token) if token else None


def _bearer(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _unauthorized(send: Send, why: str) -> None:
    message = (
        f"{why}: send 'Authorization: Bearer <token>'; the admin token is in <data-dir>/admin.token"
    )
    body = json.dumps({"error": {"code": "unauthorized", "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="ondo"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
