"""Errors at the API boundary: the HTTP status of each error class, and the one JSON envelope.

The domain raises `ondo.errors` classes that know nothing of HTTP; the API answers every error
with `{"error": {"code": CODE, "message": MESSAGE}}` and the status `STATUSES` gives its class.
The envelope is built and rendered here only, for the Starlette app's exception handlers, the
ASGI middlewares that answer before the app (authentication, the invoke fast path) and the last
line of a streamed request (which adds the status, since its status line was sent before).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from starlette.responses import Response
from starlette.types import Send

from ondo.errors import (
    ActionNotAvailable,
    BusClosed,
    BusError,
    ClientError,
    CodeUnavailable,
    ConcurrencyExhausted,
    ConfigError,
    ConfigLimitExceeded,
    Conflict,
    DataDirInUse,
    DeployError,
    DuplicateKey,
    DurationError,
    EventError,
    Forbidden,
    Gone,
    HandlerImportError,
    InputLimitExceeded,
    NetworkUnavailable,
    NotFound,
    OndoError,
    PatternError,
    PatternTooLarge,
    PayloadTooLarge,
    RateLimited,
    RequirementsError,
    RuleError,
    RuleSyntaxError,
    RuleTooLarge,
    RuntimeUnavailable,
    SecretsKeyMissing,
    SecretUnreadable,
    SourceKindUnavailable,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    Unauthorized,
    UnsafeRequirements,
    UnsupportedMediaType,
    ValidationError,
)

# Most specific class first: an error is answered with the status of the first class it is an
# instance of. Every class of ondo.errors is listed (a test checks it), so a new error class
# gets its status by a decision, not by falling through to its base.
STATUSES: Final[tuple[tuple[type[OndoError], int], ...]] = (
    # the caller sent something wrong
    (UnsupportedMediaType, 415),
    (EventError, 400),
    (DurationError, 400),
    (InputLimitExceeded, 400),
    (ActionNotAvailable, 400),
    (RuleTooLarge, 400),
    (RuleError, 400),
    (RuleSyntaxError, 400),
    (ValidationError, 400),
    (ConfigLimitExceeded, 400),
    (SourceKindUnavailable, 400),
    (ConfigError, 400),
    (PatternTooLarge, 400),
    (PatternError, 400),
    (PayloadTooLarge, 413),
    # deploying a function failed because of the app (its code, requirements or settings)
    (UnsafeRequirements, 400),
    (RequirementsError, 400),
    (HandlerImportError, 400),
    (NetworkUnavailable, 400),
    (DeployError, 400),
    # who asks, what exists, what else is going on
    (Unauthorized, 401),
    (Forbidden, 403),
    (Gone, 410),  # before NotFound, which it is a kind of
    (NotFound, 404),
    (Conflict, 409),
    (DataDirInUse, 409),
    (DuplicateKey, 409),
    (ConcurrencyExhausted, 429),  # answered with Retry-After
    (RateLimited, 429),  # Retry-After: the seconds until the caller's bucket has a token
    # the platform cannot serve now
    (CodeUnavailable, 503),  # before RuntimeUnavailable, which it is a kind of
    (RuntimeUnavailable, 503),
    (BusClosed, 503),
    (BusError, 503),
    (StoreUnavailable, 503),
    (StoreConflict, 503),
    (StoreError, 503),
    (SecretsKeyMissing, 503),  # the operator must give every node the same key
    (SecretUnreadable, 500),  # a wrong key or an altered row: the operator's to fix
    # raised by the CLI's client when a platform answered an error; never by the server
    (ClientError, 502),
    (OndoError, 500),
)

INTERNAL = "internal"


def status_of(exc: OndoError) -> int:
    """The HTTP status an error is answered with (STATUSES, first match)."""
    return next(status for cls, status in STATUSES if isinstance(exc, cls))


def error_document(code: str, message: str, status: int | None = None) -> dict[str, Any]:
    """The envelope: `{"error": {"code", "message"}}`; `status` too in a streamed answer."""
    error: dict[str, Any] = {"code": code}
    if status is not None:
        error["status"] = status
    error["message"] = message
    return {"error": error}


def error_headers(status: int) -> dict[str, str]:
    """Headers an error answer of this status carries."""
    if status == 429:
        return {"Retry-After": "1"}
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="ondo"'}
    return {}


def internal_message(exc: BaseException) -> str:
    """What a caller is told about an unexpected error (the details go to the platform log)."""
    return f"internal error ({type(exc).__name__}); see the platform log"


def render(value: Any) -> bytes:
    """JSON as Starlette's JSONResponse renders it, so every way in answers alike."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


Answer = tuple[int, dict[str, str], bytes]


def error_answer(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    """Status, headers and body of an error answer."""
    merged = {**error_headers(status), **(headers or {})}
    return status, merged, render(error_document(code, message))


def answer_for(exc: OndoError) -> Answer:
    return error_answer(status_of(exc), exc.code, str(exc), headers_of(exc))


def headers_of(exc: OndoError) -> dict[str, str]:
    """Headers an error adds to its status' own (`error_headers`)."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    status, merged, body = error_answer(status, code, message, headers)
    return Response(body, status_code=status, headers=merged, media_type="application/json")


async def send_answer(send: Send, answer: Answer) -> None:
    """An answer sent from ASGI (middlewares that answer before the app)."""
    status, headers, content = answer
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})
