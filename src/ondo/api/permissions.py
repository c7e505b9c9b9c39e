"""The permission every API route needs: one table, checked before any route runs, and the
audit entry of every call that changes something or is refused.

`guarded_routes` wraps each route's endpoint with the check; a route missing from the table
stops the app from being built, so no route can be added without deciding who may call it.
A route adds what its entry should say (resource, data subject, details) with
`api.http.audit_note`; invocations and events are not audited here (they have their records).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ondo.api.http import AUDIT_FINISH, AUDIT_LATER, platform_of, principal_of
from ondo.errors import Forbidden, OndoError
from ondo.security.policy import Permission, require
from ondo.security.tokens import Principal

Endpoint = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("ondo.audit")
P = Permission

# (method, path) -> what the call needs. Public paths (api.auth.PUBLIC_PATHS) are not here.
ROUTE_PERMISSIONS: Final[Mapping[tuple[str, str], Permission]] = {
    # The platform admin, or the scrape token: checked by api.auth (a scrape token is no
    # principal), listed here so that this table names who may call every route.
    ("GET", "/metrics"): P.PLATFORM,
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
    ("GET", "/v1/audit"): P.SELF,  # USERS widens it from one's own trail to the namespace's
    ("GET", "/v1/audit/verify"): P.PLATFORM,  # the chain spans namespaces
    ("GET", "/v1/secrets"): P.READ,
    ("PUT", "/v1/secrets/{name}"): P.SECRETS,
    ("DELETE", "/v1/secrets/{name}"): P.SECRETS,
    ("GET", "/v1/grants"): P.CONSENT,
    ("POST", "/v1/grants"): P.CONSENT,
    ("DELETE", "/v1/grants/{id}"): P.CONSENT,
    ("POST", "/v1/tokens"): P.SELF,  # for another principal: USERS, checked by the route
    ("GET", "/v1/tokens"): P.SELF,  # one's own; all of the namespace with USERS
    ("DELETE", "/v1/tokens/{id}"): P.SELF,  # one's own; any of the namespace with USERS
    ("POST", "/v1/users"): P.USERS,
    ("GET", "/v1/users"): P.USERS,
    ("PATCH", "/v1/users/{name}"): P.USERS,
    ("DELETE", "/v1/users/{name}"): P.USERS,
    ("POST", "/v1/policies"): P.USERS,
    ("GET", "/v1/policies"): P.USERS,
    ("DELETE", "/v1/policies/{id}"): P.USERS,
    ("GET", "/v1/whoami"): P.SELF,
    ("POST", "/v1/login"): P.SELF,
}


# The resource a route acts on, from its path parameters, for per-resource checks.
def _named(kind: str) -> Callable[[Mapping[str, str]], str]:
    return lambda params: f"{kind}:{params['name']}"


ROUTE_RESOURCES: Final[Mapping[tuple[str, str], Callable[[Mapping[str, str]], str]]] = {
    ("POST", "/v1/functions/{name}/invoke"): _named("function"),
    ("DELETE", "/v1/functions/{name}"): _named("function"),
    ("POST", "/v1/functions/{name}/rollback"): _named("function"),
    ("DELETE", "/v1/rules/{name}"): _named("rule"),
    ("POST", "/v1/rules/{name}/enable"): _named("rule"),
    ("POST", "/v1/rules/{name}/disable"): _named("rule"),
    ("PUT", "/v1/contacts/{name}"): _named("contact"),
    ("DELETE", "/v1/contacts/{name}"): _named("contact"),
    ("PUT", "/v1/groups/{name}"): _named("group"),
    ("DELETE", "/v1/groups/{name}"): _named("group"),
}
# Routes that check each resource they act on themselves (every event's type:TYPE, the rule's
# rule:NAME, each function, rule and source of a deployment): a policy that grants their
# permission on some resources lets the call reach them (security/policy.py allows_some).
CHECKS_ITS_RESOURCES: Final = frozenset(
    {("POST", "/v1/events"), ("POST", "/v1/rules"), ("POST", "/v1/deployments")}
)
PERMISSION_OF: dict[Endpoint, Permission] = {}  # guarded endpoint -> its permission (OpenAPI)
# Calls that only read, or whose every use is recorded elsewhere (invocation records, the bus).
NOT_AUDITED: Final = frozenset({Permission.READ, Permission.INVOKE, Permission.EMIT})


def guarded_routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """`routes` with each endpoint behind its permission check (public paths as they are)."""
    from ondo.api.auth import UNGUARDED_PATHS  # auth imports this module's users, not the reverse

    out: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route) or route.path in UNGUARDED_PATHS:
            out.append(route)
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            key = (method, route.path)
            if key not in ROUTE_PERMISSIONS:
                raise LookupError(
                    f"route {method} {route.path} has no permission in api/permissions.py"
                    " ROUTE_PERMISSIONS: decide who may call it"
                )
            endpoint = _guard(
                route.endpoint,
                key,
                ROUTE_PERMISSIONS[key],
                ROUTE_RESOURCES.get(key),
                key in CHECKS_ITS_RESOURCES,
            )
            out.append(Route(route.path, endpoint, methods=[method], name=route.name))
    return out


def _guard(
    endpoint: Endpoint,
    route: tuple[str, str],
    permission: Permission,
    resource_of: Callable[[Mapping[str, str]], str] | None,
    checks_resources: bool = False,
) -> Endpoint:
    action = " ".join(route)  # e.g. "POST /v1/rules/{name}/disable"
    audited = permission not in NOT_AUDITED and route[0] != "GET"

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        resource = resource_of(request.path_params) if resource_of is not None else ""
        what = f"{request.method} {request.url.path}"
        try:
            require(principal_of(request), permission, what, resource, some=checks_resources)
        except OndoError as exc:
            await _refused(request, action, exc)
            raise
        if not audited:
            try:
                return await endpoint(request)
            except Forbidden as exc:  # refused inside (per event type): recorded all the same
                await _refused(request, action, exc)
                raise
        request.scope[AUDIT_FINISH] = functools.partial(_audit, request, action)
        try:
            response = await endpoint(request)
        except Exception as exc:
            await _audit(request, action, "failed", _code_of(exc))
            raise
        if not request.scope.get(AUDIT_LATER):  # else the route records it (audit_later)
            await _audit(request, action, "ok" if response.status_code < 400 else "failed")
        return response

    PERMISSION_OF[guarded] = permission
    return guarded


def _code_of(exc: Exception) -> str:
    return exc.code if isinstance(exc, OndoError) else "internal"


async def _audit(request: Request, action: str, outcome: str, error: str = "") -> None:
    note: dict[str, Any] = request.scope.get("ondo.audit", {})
    detail = dict(note.get("detail", {}))
    if error:
        detail["error"] = error
    principal = principal_of(request)
    namespace = request.scope.get("ondo.namespace", principal.namespace)
    resource = note.get("resource") or default_resource(request.url.path)
    try:
        await platform_of(request).audit.record(
            namespace,
            principal.name,
            action,
            resource,
            outcome=outcome,
            about=note.get("about", ""),
            **detail,
        )
    except Exception:
        # The call's effect may have happened: say which entry is missing, then fail the call.
        log.exception(
            "could not write the audit entry of %s %s by %s/%s (outcome %s)",
            action,
            resource,
            namespace,
            principal.name,
            outcome,
        )
        raise


async def _refused(request: Request, action: str, error: OndoError) -> None:
    principal = principal_of(request)
    await platform_of(request).audit.refused(
        principal_source(principal),
        request.scope.get("ondo.namespace", principal.namespace),
        principal.name,
        action,
        request.url.path,
        error=error.code,
    )


# A path's collection -> the kind its audit resources are named by ("rule:bp-alert").
_KINDS: Final = {
    "functions": "function",
    "rules": "rule",
    "contacts": "contact",
    "groups": "group",
    "dlq": "dlq",
    "events": "event",
    "sources": "source",
    "users": "user",
    "tokens": "token",
    "grants": "grant",
    "secrets": "secret",
    "policies": "policy",
}


def default_resource(path: str) -> str:
    """What an entry names when its route did not say (api.http.audit_note): `KIND:NAME` for
    /v1/COLLECTION/NAME/…, else the path."""
    parts = path.split("/")  # "", "v1", collection, name, …
    if len(parts) >= 4 and parts[1] == "v1" and parts[2] in _KINDS and parts[3]:
        return f"{_KINDS[parts[2]]}:{parts[3]}"
    return path


def principal_source(principal: Principal) -> str:
    """Whose refusals `security.refusals` counts together: one principal's."""
    return f"{principal.namespace}/{principal.name}"


_TEMPLATES: Final = [
    (method, re.compile(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(path))), path)
    for method, path in ROUTE_PERMISSIONS
]


def action_of(method: str, path: str) -> str:
    """The audit action of a call refused before it reached its route: "METHOD /v1/x/{name}"
    when a route matches, else the method and the path (cut short)."""
    for route_method, pattern, template in _TEMPLATES:
        if route_method == method and pattern.fullmatch(path):
            return f"{method} {template}"
    return f"{method[:10]} {path[:200]}"
