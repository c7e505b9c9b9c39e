"""Consent grants: a data subject allows a user's rules to use events about it
(security/consent.py, security/grants.py). The caller is always the subject of what it grants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, json_body, namespace_of, platform_of, principal_of
from ondo.security.grants import parse_request


async def give_grant(request: Request) -> JSONResponse:
    """{"to": NAME, "types": [GLOB…], "expires"?, "purpose"?, "fields"?} -> the grant (201)."""
    platform = platform_of(request)
    body = await json_body(request, 64 * 1024)
    wanted = parse_request(body, platform.clock.now())
    caller = principal_of(request)
    grant = await platform.grants.give(caller, namespace_of(request), wanted)
    audit_note(
        request,
        resource=f"grant:{grant.id}",
        about=grant.subject,
        to=grant.grantee,
        types=list(grant.types),
        fields=None if grant.fields is None else list(grant.fields),
        expires_at=grant.expires_at,
        purpose=grant.purpose,
    )
    return answer(grant.to_json(), 201)


async def list_grants(request: Request) -> JSONResponse:
    """The grants the caller gave and holds (an admin: every grant of the namespace)."""
    platform = platform_of(request)
    found = await platform.grants.listing(principal_of(request), namespace_of(request))
    return answer({"grants": [g.to_json() for g in found]})


async def revoke_grant(request: Request) -> JSONResponse:
    """Revoke a grant (its subject, or an admin); the rules that needed it are disabled."""
    platform = platform_of(request)
    grant_id = request.path_params["id"]
    audit_note(request, resource=f"grant:{grant_id}")
    grant, disabled = await platform.grants.revoke(
        principal_of(request), namespace_of(request), grant_id
    )
    rules = [d.rule.name for d in disabled]
    audit_note(request, resource=f"grant:{grant.id}", about=grant.subject, disabled_rules=rules)
    return answer(
        {
            **grant.to_json(),
            "disabled_rules": [{"rule": d.rule.name, "owner": d.rule.owner} for d in disabled],
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/grants", list_grants, methods=["GET"]),
        Route("/v1/grants", give_grant, methods=["POST"]),
        Route("/v1/grants/{id}", revoke_grant, methods=["DELETE"]),
    ]
