"""The HTTP API: one Starlette app; each resource's routes live in api/routes/<resource>.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from ondo.api.auth import BearerAuth
from ondo.api.routes import clock, deployments, dlq, events, functions, rules, system, tokens
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
    tokens.routes,
    clock.routes,
]


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def _ondo_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OndoError)
    headers = {"Retry-After": "1"} if exc.status == 429 else None
    return _error(exc.status, exc.code, str(exc), headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"no endpoint {request.method} {request.url.path}; see /openapi.json"
    return _error(exc.status_code, code, str(detail), exc.headers)  # 405 carries `Allow`


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return _error(500, "internal", f"internal error ({type(exc).__name__}); see the platform log")


def api_routes() -> list[BaseRoute]:
    """Every route of the API, in matching order (the busiest first within each module)."""
    return [route for module_routes in ROUTE_MODULES for route in module_routes()]


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
