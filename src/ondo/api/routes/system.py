"""Health, metrics, status and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ondo import __version__
from ondo.api.http import answer, platform_of
from ondo.platform import Platform


async def healthz(request: Request) -> JSONResponse:
    """Liveness: answers without authentication."""
    return answer({"status": "ok", "version": __version__})


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of invocations, errors, durations, cold starts and pools."""
    body = platform_of(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def status(request: Request) -> JSONResponse:
    """What runs: version, data dir, runtime pool and sandbox layers."""
    platform = platform_of(request)
    return answer(
        {
            "version": __version__,
            "data_dir": str(platform.config.data_dir),
            "clock": "manual" if platform.config.manual_clock else "wall",
            "runtime": dict(platform.runtime.status()),
        }
    )


async def openapi(request: Request) -> JSONResponse:
    """This document: every route with its methods and summary."""
    return answer(openapi_document(request.app.routes))


PUBLIC = {"/healthz", "/metrics", "/openapi.json"}


def openapi_document(app_routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app_routes:
        if not isinstance(route, Route):
            continue
        doc = (route.endpoint.__doc__ or route.name.replace("_", " ")).strip().splitlines()[0]
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in route.param_convertors
        ]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op: dict[str, Any] = {
                "summary": doc,
                "operationId": f"{route.name}_{method.lower()}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}, "default": {"description": "error"}},
            }
            if route.path not in PUBLIC:
                op["security"] = [{"bearer": []}]
            paths.setdefault(route.path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "ondo", "version": __version__},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def routes(platform: Platform) -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/status", status, methods=["GET"]),
    ]
