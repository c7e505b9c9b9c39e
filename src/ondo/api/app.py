"""The HTTP API: one Starlette app; each resource's routes live in api/routes/<resource>.py."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ondo.api.auth import BearerAuth
from ondo.api.errors import INTERNAL, error_response, headers_of, internal_message, status_of
from ondo.api.permissions import guarded_routes
from ondo.api.routes import (
    audit,
    clock,
    contacts,
    deployments,
    dlq,
    events,
    functions,
    grants,
    login,
    policies,
    rules,
    secrets,
    sources,
    system,
    tokens,
    users,
)
from ondo.errors import OndoError
from ondo.platform import Platform

log = logging.getLogger("ondo.api")

ROUTE_MODULES: list[Callable[[], list[BaseRoute]]] = [
    system.routes,
    functions.routes,
    events.routes,
    deployments.routes,
    dlq.routes,
    rules.routes,
    sources.routes,
    contacts.routes,
    secrets.routes,
    tokens.routes,
    grants.routes,
    users.routes,
    policies.routes,
    login.routes,
    clock.routes,
    audit.routes,
]


async def _ondo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OndoError)
    return error_response(status_of(exc), exc.code, str(exc), headers_of(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no endpoint {request.method} {request.url.path}; see /openapi.json"
    return error_response(exc.status_code, code, str(detail), exc.headers)  # 405: `Allow`


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, INTERNAL, internal_message(exc))


def api_routes() -> list[BaseRoute]:
    """Every route of the API, in matching order (the busiest first within each module)."""
    return guarded_routes([route for module_routes in ROUTE_MODULES for route in module_routes()])


def create_app(platform: Platform) -> Starlette:
    app = Starlette(
        routes=api_routes(),
        middleware=[Middleware(BearerAuth, platform=platform)],
        exception_handlers={
            OndoError: _ondo_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.platform = platform
    return app
