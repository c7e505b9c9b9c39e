"""Who am I (`GET /v1/whoami`), and a login (`POST /v1/login`): the same answer, and a login
puts `auth.login` on the bus in the caller's namespace (security/login.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import (
    answer,
    audit_note,
    decode_json,
    namespace_of,
    platform_of,
    principal_of,
    read_body,
)
from ondo.errors import ValidationError
from ondo.security.login import identity_json, login_event


async def whoami(request: Request) -> JSONResponse:
    return answer(identity_json(principal_of(request)))


async def login(request: Request) -> JSONResponse:
    """No body, or `{}`: the token is the login."""
    body = await read_body(request, 64 * 1024)
    if body.strip() and await decode_json(body) != {}:
        raise ValidationError("POST /v1/login takes no body (or {}): the bearer token logs in")
    platform = platform_of(request)
    principal = principal_of(request)
    namespace = namespace_of(request)
    event = login_event(principal, platform.clock.now())
    (appended,) = await platform.bus.append([event], namespace)
    platform.metrics.events_appended(namespace, 0 if appended.duplicate else 1)
    audit_note(request, resource=f"token:{principal.token_id}", event=event.id)
    return answer({**identity_json(principal), "event_id": event.id})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/whoami", whoami, methods=["GET"]),
        Route("/v1/login", login, methods=["POST"]),
    ]
