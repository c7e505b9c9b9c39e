"""Users and service accounts of a namespace: add (answering its first token, once), list,
remove (revoking its tokens and dropping its policies)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, json_body, platform_of, principal_of
from ondo.api.routes.identity_body import acting_namespace, optional_text
from ondo.api.routes.tokens import issued_json
from ondo.backends.store.repositories.tokens import User
from ondo.errors import ValidationError

BODY_KEYS = {"name", "role", "namespace", "kind"}


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "namespace": user.namespace,
        "role": user.role,
        "kind": user.kind,
        "created_at": user.created_at,
        "created_by": user.created_by,
    }


async def add_user(request: Request) -> JSONResponse:
    """{"name": NAME, "role": ROLE (developer), "namespace": NS, "kind": "user"|"service"}."""
    body = await json_body(request, 64 * 1024)
    if not isinstance(body, dict) or set(body) - BODY_KEYS or "name" not in body:
        raise ValidationError(
            'body must be {"name": NAME, "role": "admin"|"developer"|"operator"|"citizen",'
            ' "kind": "user"|"service", "namespace": NS} (only name is required)'
        )
    namespace = acting_namespace(request, body.get("namespace"))
    name = optional_text(body, "name")
    user, issued = await platform_of(request).identities.add_user(
        principal_of(request),
        namespace,
        name,
        optional_text(body, "role") or "developer",
        optional_text(body, "kind") or "user",
    )
    audit_note(request, resource=f"user:{user.name}", role=user.role, kind=user.kind)
    return answer({"user": user_json(user), **issued_json(issued)}, 201)


async def list_users(request: Request) -> JSONResponse:
    found = await platform_of(request).identities.users(
        principal_of(request), acting_namespace(request, None)
    )
    return answer({"users": [user_json(user) for user in found]})


async def set_role(request: Request) -> JSONResponse:
    """{"role": ROLE}: the user's tokens carry the new role from their next call."""
    body = await json_body(request, 64 * 1024)
    if not isinstance(body, dict) or set(body) != {"role"}:
        raise ValidationError('body must be {"role": "admin"|"developer"|"operator"|"citizen"}')
    name = request.path_params["name"]
    user = await platform_of(request).identities.set_role(
        principal_of(request), acting_namespace(request, None), name, optional_text(body, "role")
    )
    audit_note(request, resource=f"user:{name}", role=user.role)
    return answer({"user": user_json(user)})


async def remove_user(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    revoked = await platform_of(request).identities.remove_user(
        principal_of(request), acting_namespace(request, None), name
    )
    audit_note(request, resource=f"user:{name}", tokens_revoked=revoked)
    return answer({"deleted": name, "tokens_revoked": revoked})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/users", add_user, methods=["POST"]),
        Route("/v1/users", list_users, methods=["GET"]),
        Route("/v1/users/{name}", set_role, methods=["PATCH"]),
        Route("/v1/users/{name}", remove_user, methods=["DELETE"]),
    ]
