"""The OpenAPI 3.1 document: every route of the app, with its parameters, bodies and answers.

Routes come from the Starlette router; what each operation takes and answers is declared here in
`api.openapi_ops`, keyed by (method, path). A route without a declaration fails the unit test
that compares the two, so the document cannot fall behind the API.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from ondo import __version__
from ondo.api.auth import METRICS_PATH, NAMESPACE_PARAM, PUBLIC_PATHS
from ondo.api.openapi_ops import OPERATIONS, Operation, Schema
from ondo.api.permissions import PERMISSION_OF
from ondo.security.policy import Permission
from ondo.security.tenancy import NAMESPACE_RE

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
REASONS = {
    400: "the request is invalid (the message says what and how to fix it)",
    401: "no bearer token, or an unknown, expired or revoked one",
    403: "the token's role, policies or consent do not allow this call",
    404: "not found: no such resource in the namespace, or not one this token may use",
    409: "conflict with the resource's current state",
    410: "gone: it existed, but retention deleted it (older than the retention of its kind)",
    413: "the body is over the size limit",
    415: "unsupported Content-Type",
    429: "too many requests from this caller, or too many concurrent calls: retry after"
    " the seconds `Retry-After` gives",
    503: "a platform part is unavailable; retry",
}
NAMESPACE = {
    "name": NAMESPACE_PARAM,
    "in": "query",
    "required": False,
    "description": "The namespace to act in. Only the admin may name another one than its token's"
    " own; any other token is answered 404.",
    "schema": {"type": "string", "pattern": NAMESPACE_RE.pattern},
}


def openapi_document(app_routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app_routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = OPERATIONS[(method, route.path)]
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ondo", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
    }


def _operation(route: Route, method: str, op: Operation) -> dict[str, Any]:
    public = route.path in PUBLIC_PATHS
    doc = (route.endpoint.__doc__ or route.name.replace("_", " ")).strip().splitlines()[0]
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for p in route.param_convertors
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in op.query.items()
    ]
    out: dict[str, Any] = {
        "summary": doc,
        "operationId": f"{route.name}_{method.lower()}",
        "parameters": params if public else [*params, NAMESPACE],
        "responses": _responses(op, public, PERMISSION_OF.get(route.endpoint)),
    }
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": op.body}
    if not public:
        out["security"] = [{"bearer": []}]
    permission = PERMISSION_OF.get(route.endpoint)
    if route.path == METRICS_PATH:
        out["description"] = (
            "The platform admin's token or the scrape token (<data-dir>/metrics.token);"
            " any other token is answered 404."
        )
    elif permission is Permission.PLATFORM:
        out["description"] = "Admin only: any other token is answered 404."
    elif permission is not None:
        out["description"] = f"Needs the permission `{permission.value}` in the namespace."
        out["x-ondo-permission"] = permission.value
    return out


def _responses(op: Operation, public: bool, permission: Permission | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, schema in op.answers.items():
        out[str(status)] = {"description": "OK", "content": {op.media_type: _content(schema)}}
    errors = set(op.errors) if public else {400, 401, 404, 429, *op.errors}
    if permission not in (None, Permission.PLATFORM):
        errors.add(403)
    for status in sorted(errors):
        out[str(status)] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _content(schema: Schema) -> dict[str, Any]:
    return {"schema": schema}
