"""Tokens: issue one for oneself (or, with USERS, for another principal of the namespace), list
them, revoke one. A token is shown once, in the answer that issues it; only its hash is kept."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, json_body, platform_of, principal_of
from ondo.api.routes.identity_body import acting_namespace, optional_text
from ondo.backends.store.repositories.tokens import TokenInfo
from ondo.durations import parse_duration
from ondo.errors import ValidationError
from ondo.security.identities import TokenRequest
from ondo.security.tokens import IssuedToken

BODY_KEYS = {"principal", "namespace", "expires_in", "label"}


async def issue_token(request: Request) -> JSONResponse:
    """{"principal": NAME (default: the caller), "namespace": NS, "expires_in": "30d",
    "label": TEXT}; the token is in this answer only."""
    body = await json_body(request, 64 * 1024)
    if not isinstance(body, dict) or set(body) - BODY_KEYS:
        raise ValidationError(
            'body must be {"principal": NAME, "expires_in": "30d", "label": TEXT}'
            " (all optional; the principal defaults to yourself)"
        )
    namespace = acting_namespace(request, body.get("namespace"))
    expires = optional_text(body, "expires_in")
    asked = TokenRequest(
        principal=optional_text(body, "principal"),
        label=optional_text(body, "label"),
        expires_in_s=_lifetime(expires) if expires else None,
    )
    issued = await platform_of(request).identities.issue(principal_of(request), namespace, asked)
    audit_note(request, resource=f"token:{issued.id}", holder=issued.principal.name)
    return answer(issued_json(issued), 201)


def _lifetime(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValidationError(f"'expires_in' {text[:40]!r} must be more than zero, e.g. 30d")
    return seconds


def issued_json(issued: IssuedToken) -> dict[str, Any]:
    principal = issued.principal
    return {
        "token": issued.token,
        "id": issued.id,
        "principal": principal.name,
        "namespace": principal.namespace,
        "role": principal.role,
        "expires_at": principal.expires_at,
    }


def token_json(info: TokenInfo, now: float) -> dict[str, Any]:
    """What a listing shows of a token: never the token or its hash."""
    if info.revoked_at is not None:
        state = "revoked"
    elif info.expires_at is not None and now >= info.expires_at:
        state = "expired"
    else:
        state = "live"
    return {
        "id": info.id,
        "principal": info.principal,
        "namespace": info.namespace,
        "label": info.label,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
        "state": state,
    }


async def list_tokens(request: Request) -> JSONResponse:
    platform = platform_of(request)
    found = await platform.identities.token_list(
        principal_of(request), acting_namespace(request, None)
    )
    now = platform.clock.now()
    return answer({"tokens": [token_json(info, now) for info in found]})


async def revoke_token(request: Request) -> JSONResponse:
    platform = platform_of(request)
    token_id = request.path_params["id"]
    revoked = await platform.identities.revoke(
        principal_of(request), acting_namespace(request, None), token_id
    )
    audit_note(request, resource=f"token:{token_id}", holder=revoked.principal)
    return answer(token_json(revoked, platform.clock.now()))


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/tokens", issue_token, methods=["POST"]),
        Route("/v1/tokens", list_tokens, methods=["GET"]),
        Route("/v1/tokens/{id}", revoke_token, methods=["DELETE"]),
    ]
