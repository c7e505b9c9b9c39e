"""Sources: list them with their state, show one with its counters, last error and settings
(secrets masked)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, namespace_of, platform_of
from ondo.sources.redact import redacted


async def list_sources(request: Request) -> JSONResponse:
    supervisor = platform_of(request).sources
    statuses = supervisor.statuses(namespace_of(request))
    return answer({"sources": [status.to_json() for status in statuses]})


async def show_source(request: Request) -> JSONResponse:
    supervisor = platform_of(request).sources
    namespace, name = namespace_of(request), request.path_params["name"]
    status = supervisor.status(namespace, name)
    settings: dict[str, Any] = redacted(dict(supervisor.settings(namespace, name).spec))
    return answer({**status.to_json(), "settings": settings})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/sources", list_sources, methods=["GET"]),
        Route("/v1/sources/{name}", show_source, methods=["GET"]),
    ]
