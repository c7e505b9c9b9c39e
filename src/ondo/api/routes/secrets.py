"""Secrets: set (the raw body is the value), list (names and dates, never values) and delete.
No route returns a value: only the functions that declare a secret receive it
(docs/security.md, "Secrets")."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, namespace_of, platform_of, principal_of, read_body
from ondo.backends.store.repositories.secrets import SecretInfo
from ondo.security.secrets import MAX_VALUE_BYTES, check_name


def _secret_json(info: SecretInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "namespace": info.namespace,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "created_by": info.created_by,
    }


async def list_secrets(request: Request) -> JSONResponse:
    """The namespace's secrets: names, when set and by whom (never their values)."""
    listing = await platform_of(request).secrets.listing(namespace_of(request))
    return answer({"secrets": [_secret_json(info) for info in listing]})


async def put_secret(request: Request) -> JSONResponse:
    """Set a secret: the request body is its value (UTF-8 text, up to 64 KiB)."""
    name = request.path_params["name"]
    check_name(name)  # before reading a body meant for a name that cannot be
    audit_note(request, resource=f"secret:{name}")  # the name only, never the value
    value = await read_body(request, MAX_VALUE_BYTES)
    platform, namespace = platform_of(request), namespace_of(request)
    created = await platform.secrets.put(namespace, name, value, principal_of(request).name)
    return answer(
        {"name": name, "namespace": namespace, "created": created}, 201 if created else 200
    )


async def delete_secret(request: Request) -> JSONResponse:
    """Delete a secret; functions that declare it fail until it is set again."""
    name = request.path_params["name"]
    audit_note(request, resource=f"secret:{name}")
    await platform_of(request).secrets.delete(namespace_of(request), name)
    return answer({"deleted": name})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/secrets", list_secrets, methods=["GET"]),
        Route("/v1/secrets/{name}", put_secret, methods=["PUT"]),
        Route("/v1/secrets/{name}", delete_secret, methods=["DELETE"]),
    ]
