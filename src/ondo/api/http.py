"""Helpers every routes module uses: JSON bodies with limits, JSON answers, the caller."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeGuard, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from ondo import boundedjson
from ondo.boundedjson import JsonLimits
from ondo.errors import PayloadTooLarge, ValidationError
from ondo.platform import Platform
from ondo.security.tokens import Principal
from ondo.units import size_text

MAX_STORED_INT = 2**63 - 1  # the largest integer the stores keep (SQLite and PostgreSQL bigint)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def whole_number(raw: str, what: str) -> int:
    """`raw` as a number the stores can hold (ASCII digits, at most 18), or a 400 naming `what`."""
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise ValidationError(f"{what} is a number of 1-18 digits, got {raw[:40]!r}")
    return int(raw)


def is_stored_int(value: object, low: int = 0) -> TypeGuard[int]:
    """A JSON integer (not a boolean) from `low` up to what the stores can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_STORED_INT


# Bodies above this are decoded and validated on a worker thread: decoding megabytes takes long
# enough to stall every other request (and /healthz) if it runs on the event loop.
OFF_LOOP_BYTES = 64 * 1024
_P = ParamSpec("_P")
_T = TypeVar("_T")
READ_BODY_LIMITS = JsonLimits(max_bytes=None)  # read_body has already enforced the size


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def principal_of(request: Request) -> Principal:
    principal: Principal = request.scope["ondo.principal"]
    return principal


def audit_note(request: Request, *, resource: str = "", about: str = "", **detail: Any) -> None:
    """What the audit entry of this call should say beyond its route (api/permissions.py
    records every call that changes something): the resource it acted on, the data subject it
    concerns, details. Never a secret value or a token."""
    note: dict[str, Any] = request.scope.setdefault("ondo.audit", {})
    if resource:
        note["resource"] = resource
    if about:
        note["about"] = about
    note.setdefault("detail", {}).update(detail)


AuditFinish = Callable[[str, str], Awaitable[None]]  # (outcome, error code or "")
AUDIT_FINISH = "ondo.audit.finish"  # the guard's recorder of this call (api/permissions.py)
AUDIT_LATER = "ondo.audit.later"  # set: the route records the call itself, when it is over


def audit_later(request: Request) -> AuditFinish:
    """For a call whose outcome is known only after its answer began (a progress stream): the
    guard does not record it when the route returns; the route awaits the function returned
    here once, with the outcome ("ok" or "failed") and the error's code."""
    request.scope[AUDIT_LATER] = True
    finish: AuditFinish = request.scope[AUDIT_FINISH]
    return finish


def namespace_of(request: Request) -> str:
    """The namespace the call acts in, as `api.auth` resolved it for the caller."""
    namespace: str = request.scope["ondo.namespace"]
    return namespace


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        check_declared_length(declared, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_running_length(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_declared_length(declared: str, limit: int) -> None:
    """413 before reading, when the Content-Length header already says too much."""
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {size_text(int(declared))}; the limit is {size_text(limit)}"
        )


def check_running_length(size: int, limit: int) -> None:
    """413 as soon as the bytes read pass the limit (a body without or lying about its length)."""
    if size > limit:
        raise PayloadTooLarge(f"request body is over the limit of {size_text(limit)}")


def parse_json(body: bytes, what: str = "request body") -> Any:
    """`body` (read by `read_body`, so within its size limit) as JSON within depth and digits."""
    return boundedjson.loads(body, what, READ_BODY_LIMITS)


async def off_loop_if_large(
    size: int, work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """`work(...)` on a worker thread when it handles `size` > OFF_LOOP_BYTES bytes, else here."""
    if size <= OFF_LOOP_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


async def decode_json(body: bytes, what: str = "request body") -> Any:
    """`parse_json`, moved off the event loop when the body is large, so others keep answering."""
    return await off_loop_if_large(len(body), parse_json, body, what)


async def json_body(request: Request, limit: int = 1024 * 1024) -> Any:
    return await decode_json(await read_body(request, limit))


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            f"query parameter {name!r} must be a whole number, got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise ValidationError(f"query parameter {name!r} must be between {low} and {high}")
    return value


def flag_param(params: Mapping[str, str], name: str) -> bool:
    """A yes/no query parameter: true, 1 or yes; anything else (or none) is no."""
    return params.get(name, "false").lower() in ("1", "true", "yes")


def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)
