"""The permission every API route needs: one table, checked before any route runs.

`guarded_routes` wraps each route's endpoint with the check; a route missing from the table
stops the app from being built, so no route can be added without deciding who may call it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ondo.api.http import principal_of
from ondo.security.policy import Permission, require

Endpoint = Callable[[Request], Awaitable[Response]]
P = Permission

# (method, path) -> what the call needs. Public paths (api.auth.PUBLIC_PATHS) are not here.
ROUTE_PERMISSIONS: Final[Mapping[tuple[str, str], Permission]] = {
    ("GET", "/v1/status"): P.PLATFORM,
    ("GET", "/v1/actions"): P.PLATFORM,
    ("GET", "/v1/clock"): P.PLATFORM,
    ("POST", "/v1/clock/advance"): P.PLATFORM,
    ("POST", "/v1/functions/{name}/invoke"): P.INVOKE,
    ("GET", "/v1/functions"): P.READ,
    ("GET", "/v1/functions/{name}"): P.READ,
    ("DELETE", "/v1/functions/{name}"): P.DEPLOY,
    ("GET", "/v1/functions/{name}/versions"): P.READ,
    ("POST", "/v1/functions/{name}/rollback"): P.DEPLOY,
    ("GET", "/v1/functions/{name}/invocations"): P.READ,
    ("GET", "/v1/functions/{name}/logs"): P.READ,
    ("GET", "/v1/invocations/{id}"): P.READ,
    ("POST", "/v1/events"): P.EMIT,
    ("GET", "/v1/events"): P.READ,
    ("POST", "/v1/events/replay"): P.OPERATE,
    ("GET", "/v1/events/{id}"): P.READ,
    ("POST", "/v1/deployments"): P.DEPLOY,
    ("GET", "/v1/dlq"): P.READ,
    ("POST", "/v1/dlq/retry"): P.OPERATE,
    ("GET", "/v1/dlq/{id}"): P.READ,
    ("DELETE", "/v1/dlq/{id}"): P.OPERATE,
    ("POST", "/v1/dlq/{id}/retry"): P.OPERATE,
    ("GET", "/v1/rules"): P.READ,
    ("POST", "/v1/rules"): P.RULES,
    ("POST", "/v1/rules/test"): P.READ,
    ("GET", "/v1/rules/{name}"): P.READ,
    ("DELETE", "/v1/rules/{name}"): P.RULES,
    ("POST", "/v1/rules/{name}/enable"): P.RULES,
    ("POST", "/v1/rules/{name}/disable"): P.RULES,
    ("GET", "/v1/rules/{name}/enforcements"): P.READ,
    ("GET", "/v1/trace/{event_id}"): P.READ,
    ("GET", "/v1/sources"): P.READ,
    ("GET", "/v1/sources/{name}"): P.READ,
    ("GET", "/v1/contacts"): P.READ,
    ("PUT", "/v1/contacts/{name}"): P.DEPLOY,
    ("DELETE", "/v1/contacts/{name}"): P.DEPLOY,
    ("PUT", "/v1/groups/{name}"): P.DEPLOY,
    ("DELETE", "/v1/groups/{name}"): P.DEPLOY,
    ("POST", "/v1/tokens"): P.PLATFORM,
}
# The resource a route acts on, from its path parameters, for per-resource checks.
ROUTE_RESOURCES: Final[Mapping[tuple[str, str], Callable[[Mapping[str, str]], str]]] = {
    ("POST", "/v1/functions/{name}/invoke"): lambda params: f"function:{params['name']}",
}
PERMISSION_OF: dict[Endpoint, Permission] = {}  # guarded endpoint -> its permission (OpenAPI)


def guarded_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """`routes` with each endpoint behind its permission check (public paths as they are)."""
    from ondo.api.auth import PUBLIC_PATHS  # auth imports this module's users, not the reverse

    out: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route) or route.path in PUBLIC_PATHS:
            out.append(route)
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            key = (method, route.path)
            if key not in ROUTE_PERMISSIONS:
                raise LookupError(
                    f"route {method} {route.path} has no permission in api/permissions.py"
                    " ROUTE_PERMISSIONS: decide who may call it"
                )
            endpoint = _guard(route.endpoint, ROUTE_PERMISSIONS[key], ROUTE_RESOURCES.get(key))
            out.append(Route(route.path, endpoint, methods=[method], name=route.name))
    return out


def _guard(
    endpoint: Endpoint,
    permission: Permission,
    resource_of: Callable[[Mapping[str, str]], str] | None,
) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        resource = resource_of(request.path_params) if resource_of is not None else ""
        what = f"{request.method} {request.url.path}"
        require(principal_of(request), permission, what, resource)
        return await endpoint(request)

    PERMISSION_OF[guarded] = permission
    return guarded
