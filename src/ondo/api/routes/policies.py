"""Per-resource policies: grant a principal one permission on resources matching a pattern,
list them, remove one. They take effect on the principal's next call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, json_body, platform_of, principal_of
from ondo.api.routes.identity_body import acting_namespace, optional_text
from ondo.errors import ValidationError

BODY_KEYS = {"principal", "permission", "resource", "namespace"}


async def add_policy(request: Request) -> JSONResponse:
    """{"principal": NAME, "permission": PERMISSION, "resource": PATTERN (default *)}."""
    body = await json_body(request, 64 * 1024)
    required = {"principal", "permission"}
    if not isinstance(body, dict) or set(body) - BODY_KEYS or not required <= set(body):
        raise ValidationError(
            'body must be {"principal": NAME, "permission": PERMISSION,'
            ' "resource": "function:report*"} (resource defaults to *, everything)'
        )
    policy = await platform_of(request).identities.add_policy(
        principal_of(request),
        acting_namespace(request, body.get("namespace")),
        optional_text(body, "principal"),
        optional_text(body, "permission"),
        optional_text(body, "resource"),
    )
    audit_note(
        request,
        resource=f"policy:{policy.id}",
        to=policy.principal,
        permission=policy.permission,
        pattern=policy.resource,
    )
    return answer(policy.to_json(), 201)


async def list_policies(request: Request) -> JSONResponse:
    found = await platform_of(request).identities.policy_list(
        principal_of(request), acting_namespace(request, None)
    )
    return answer({"policies": [policy.to_json() for policy in found]})


async def remove_policy(request: Request) -> JSONResponse:
    policy_id = request.path_params["id"]
    removed = await platform_of(request).identities.remove_policy(
        principal_of(request), acting_namespace(request, None), policy_id
    )
    audit_note(request, resource=f"policy:{policy_id}", to=removed.principal)
    return answer({"deleted": policy_id})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/policies", add_policy, methods=["POST"]),
        Route("/v1/policies", list_policies, methods=["GET"]),
        Route("/v1/policies/{id}", remove_policy, methods=["DELETE"]),
    ]
