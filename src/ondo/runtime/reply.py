"""What the platform accepts as a worker's reply, checked field by field.

The worker's process runs the handler: whatever arrives on its socket may have been written by
user code (it can find the socket in /proc/self/fd). So a reply is read as untrusted input: a
header that is not a JSON object of the expected shape, a reply to another request, or a
result that is not UTF-8 JSON is that invocation's failure (the pool kills the worker), never
an exception that reaches the platform's callers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ondo.runtime.channel import encodable

MAX_ERROR_TEXT = 64 * 1024  # an errorMessage or one stack frame; longer ones are cut
MAX_STACK_FRAMES = 200
STATUSES = ("succeeded", "failed")


class MalformedReply(Exception):
    """Raised when a worker's reply cannot be read; `why` says what was wrong with it."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class WorkerReply:
    succeeded: bool
    result: bytes | None  # the handler's value as UTF-8 JSON text (succeeded only)
    value: Any  # `result` parsed
    error: dict[str, Any] | None  # Lambda-style error, failed only
    duration_ms: float
    max_rss_kb: float
    fatal: bool  # the worker ran out of memory and exits after this reply


def read_reply(header: dict[str, Any], body: bytes, request_id: str) -> WorkerReply:
    """The reply to `request_id`; MalformedReply if it is not one the platform can use."""
    if header.get("id") != request_id:
        raise MalformedReply(f"a reply for request {_shown(header.get('id'))}, not this one")
    status = header.get("status")
    if status not in STATUSES:
        raise MalformedReply(f"status {_shown(status)} (expected 'succeeded' or 'failed')")
    duration_ms = _number(header, "duration_ms")
    max_rss_kb = _number(header, "max_rss_kb")
    fatal = bool(header.get("fatal"))
    if status == "succeeded":
        value = _result(body)
        return WorkerReply(True, body, value, None, duration_ms, max_rss_kb, fatal)
    error = _error(header.get("error"))
    return WorkerReply(False, None, None, error, duration_ms, max_rss_kb, fatal)


def _number(header: dict[str, Any], name: str) -> float:
    value = header.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedReply(f"{name} is {_shown(value)}, not a number")
    if not math.isfinite(value) or value < 0:
        raise MalformedReply(f"{name} is {value!r}, not a finite number of at least 0")
    return float(value)


def _result(body: bytes) -> Any:
    try:
        value = json.loads(body.decode())
    except UnicodeDecodeError as exc:
        raise MalformedReply(f"a result that is not UTF-8 (byte {exc.start})") from None
    except ValueError as exc:
        raise MalformedReply(f"a result that is not JSON ({exc})") from None
    except RecursionError:
        raise MalformedReply("a result nested too deeply to read") from None
    # The worker writes non-ASCII as UTF-8, so a surrogate escape is rare: only then check that
    # no lone one made a string that cannot be encoded again (every API answer would fail).
    if b"\\ud" in body or b"\\uD" in body:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise MalformedReply("a result holding a lone surrogate (not Unicode)") from None
    return value


def _error(error: Any) -> dict[str, Any]:
    """Only the fields the platform shows, as text it can always encode (no lone surrogates)."""
    if not isinstance(error, dict):
        return {
            "errorMessage": "the worker reported a failure without saying what failed",
            "errorType": "Runtime.Unknown",
            "stackTrace": [],
        }
    frames = error.get("stackTrace")
    return {
        "errorMessage": _text(error.get("errorMessage", "")),
        "errorType": _text(error.get("errorType", "Runtime.Unknown"))[:200],
        "stackTrace": [_text(f) for f in frames[:MAX_STACK_FRAMES]]
        if isinstance(frames, list)
        else [],
    }


def _text(value: Any) -> str:
    return encodable(value[:MAX_ERROR_TEXT] if isinstance(value, str) else _shown(value))


def _shown(value: Any) -> str:
    """A short, safe rendering (repr of a deeply nested list would itself recurse too far)."""
    if value is None or isinstance(value, (str, int, float)):
        return encodable(repr(value)[:80])
    return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
