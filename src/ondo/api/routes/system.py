"""Health, metrics, status and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ondo import __version__
from ondo.api.http import answer, platform_of
from ondo.api.openapi import openapi_document


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
    """This document: every operation with its parameters, bodies and answers."""
    return answer(openapi_document(request.app.routes))


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/status", status, methods=["GET"]),
    ]
