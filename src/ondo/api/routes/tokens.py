"""Tokens: the admin issues a bearer token to a principal that acts in one namespace."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, json_body, platform_of, principal_of
from ondo.errors import ValidationError
from ondo.security.tenancy import new_principal


async def issue_token(request: Request) -> JSONResponse:
    """Issue a token for {"principal": NAME, "namespace": NS}; it is shown once, only here."""
    body = await json_body(request, 64 * 1024)
    if not isinstance(body, dict) or set(body) - {"principal", "namespace"}:
        raise ValidationError('body must be {"principal": NAME, "namespace": NAMESPACE}')
    principal = new_principal(body.get("principal"), body.get("namespace"))
    platform = platform_of(request)
    issued = await platform.tokens.issue(
        principal, platform.clock.now(), created_by=principal_of(request).name
    )
    return answer(
        {
            "token": issued.token,
            "id": issued.id,
            "principal": principal.name,
            "namespace": principal.namespace,
        },
        201,
    )


def routes() -> list[BaseRoute]:
    return [Route("/v1/tokens", issue_token, methods=["POST"])]
