"""Functions: list, show, versions, rollback, delete, invoke, and their invocation records."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ondo.api.http import (
    answer,
    audit_note,
    flag_param,
    int_param,
    is_stored_int,
    json_body,
    namespace_of,
    platform_of,
    read_body,
    whole_number,
)
from ondo.api.invoke import run_invoke
from ondo.deploy.guards import delete_function as delete_guarded
from ondo.errors import Gone, NotFound, ValidationError
from ondo.ids import uuid7_time


async def list_functions(request: Request) -> JSONResponse:
    platform = platform_of(request)
    found = await platform.functions.list_current(namespace_of(request))
    return answer({"functions": [fv.to_json() for fv in found]})


async def show_function(request: Request) -> JSONResponse:
    fv = platform_of(request).functions.get(request.path_params["name"], namespace_of(request))
    return answer(fv.to_json())


async def delete_function(request: Request) -> JSONResponse:
    """Refused (409) while enabled rules invoke the function, unless ?force=true disables them."""
    name = request.path_params["name"]
    disabled = await delete_guarded(
        platform_of(request).deploy_targets,
        name,
        namespace_of(request),
        force=flag_param(request.query_params, "force"),
    )
    audit_note(request, disabled_rules=disabled)
    return answer({"deleted": name, "disabled_rules": disabled})


async def list_versions(request: Request) -> JSONResponse:
    platform = platform_of(request)
    name, namespace = request.path_params["name"], namespace_of(request)
    current = platform.functions.get(name, namespace)
    versions = await platform.functions.versions(name, namespace)
    return answer({"current": current.version, "versions": [v.to_json() for v in versions]})


async def rollback(request: Request) -> JSONResponse:
    body = await json_body(request)
    version = body.get("version") if isinstance(body, dict) else None
    if not is_stored_int(version, low=1):
        raise ValidationError('body must be {"version": N} with N a version number ≥ 1')
    audit_note(request, version=version)
    platform = platform_of(request)
    fv = await platform.functions.rollback(
        request.path_params["name"], version, namespace_of(request)
    )
    return answer({"name": fv.name, "current": fv.version})


def _version_param(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw is None or raw in ("", "$LATEST", "current"):
        return None
    return whole_number(raw, "query parameter 'version' (a version number, $LATEST or current)")


def _invoke_params(request: Request) -> tuple[str, str, int | None]:
    """mode, namespace and version; without a query string, the defaults (none to parse)."""
    if not request.scope["query_string"]:
        return "sync", namespace_of(request), None
    mode = request.query_params.get("mode", "sync")
    if mode not in ("sync", "async"):
        raise ValidationError(f"query parameter 'mode' must be sync or async, got {mode!r}")
    return mode, namespace_of(request), _version_param(request)


async def invoke(request: Request) -> Response:
    platform = platform_of(request)
    mode, namespace, version = _invoke_params(request)
    body = await read_body(request, platform.config.max_body_bytes)
    name = request.path_params["name"]
    status, headers, content = await run_invoke(
        platform, name, body, mode=mode, namespace=namespace, version=version
    )
    return Response(content, status, headers, media_type="application/json")


async def function_invocations(request: Request) -> JSONResponse:
    platform = platform_of(request)
    name, namespace = request.path_params["name"], namespace_of(request)
    platform.functions.get(name, namespace)
    limit = int_param(request, "limit", 20, 1, 1000)
    records = await platform.functions.invocations(namespace, name, limit)
    return answer({"invocations": [r.to_json() for r in records]})


async def function_logs(request: Request) -> JSONResponse:
    """Finished invocations after `after` (a finished_at time), for `ondo logs --follow`."""
    platform = platform_of(request)
    name, namespace = request.path_params["name"], namespace_of(request)
    platform.functions.get(name, namespace)
    try:
        after = float(request.query_params.get("after", "0"))
    except ValueError:
        raise ValidationError("query parameter 'after' must be a number (seconds)") from None
    limit = int_param(request, "limit", 100, 1, 1000)
    records = await platform.functions.logs_after(namespace, name, after, limit)
    return answer({"invocations": [r.to_json() for r in records]})


async def get_invocation(request: Request) -> JSONResponse:
    platform = platform_of(request)
    invocation_id = request.path_params["id"]
    record = await platform.functions.invocation(invocation_id)
    if record is None:
        made = uuid7_time(invocation_id)
        reason = await platform.retention.deleted("invocation_records", made)
        if reason is not None:
            raise Gone(f"invocation {invocation_id!r} is {reason} and was deleted")
    if record is None or record.namespace != namespace_of(request):
        maybe = await platform.retention.may_have_deleted("invocation_records")
        hint = f" (if it ran earlier, it may be older than {maybe} and deleted)" if maybe else ""
        raise NotFound(f"invocation {invocation_id!r} does not exist{hint}")
    return answer(record.to_json())


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/functions/{name}/invoke", invoke, methods=["POST"]),  # first: the busiest
        Route("/v1/functions", list_functions, methods=["GET"]),
        Route("/v1/functions/{name}", show_function, methods=["GET"]),
        Route("/v1/functions/{name}", delete_function, methods=["DELETE"]),
        Route("/v1/functions/{name}/versions", list_versions, methods=["GET"]),
        Route("/v1/functions/{name}/rollback", rollback, methods=["POST"]),
        Route("/v1/functions/{name}/invocations", function_invocations, methods=["GET"]),
        Route("/v1/functions/{name}/logs", function_logs, methods=["GET"]),
        Route("/v1/invocations/{id}", get_invocation, methods=["GET"]),
    ]
