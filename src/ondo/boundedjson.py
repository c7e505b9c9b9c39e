"""The one JSON decoder for input from outside: size, nesting depth and integer length bounded.

Python's `json.loads` has no limits of its own: 100,000 nested `[` end in a RecursionError, an
integer of 4,300+ digits in a ValueError (Python's int/str conversion limit), and both used to
surface as a 500. Every request body, binary-mode event payload and invocation event is read
here instead, and a document over a limit is refused with an error that names the limit.

The checks cost next to nothing on ordinary documents: the depth walk runs only when the text
holds more `[`/`{` than the depth limit, the integer hook only when a run of digits is longer
than the digit limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ondo.errors import InputLimitExceeded, PayloadTooLarge, ValidationError

MAX_JSON_DEPTH = 128
MAX_JSON_INT_DIGITS = 1000
MAX_JSON_BYTES = 1024 * 1024


@dataclass(frozen=True)
class JsonLimits:
    """How large, how deep and how long-numbered a document may be."""

    max_bytes: int | None = MAX_JSON_BYTES  # None: the caller read the body within a limit
    max_depth: int = MAX_JSON_DEPTH
    max_int_digits: int = MAX_JSON_INT_DIGITS


DEFAULT_LIMITS = JsonLimits()
_NOT_UTF8_START = (b"\x00", b"\xfe", b"\xff", b"\xef")  # NUL or a byte-order mark


class _TooManyDigits(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def loads(
    body: bytes | str, what: str = "request body", limits: JsonLimits = DEFAULT_LIMITS
) -> Any:
    """`body` parsed as JSON, or a 400 (ValidationError / InputLimitExceeded) or 413 naming why."""
    if limits.max_bytes is not None and len(body) > limits.max_bytes:
        raise PayloadTooLarge(f"{what} is {len(body)} bytes; the limit is {limits.max_bytes} bytes")
    text = _text(body, what)
    if not text.strip():
        raise ValidationError(f"{what} is empty; send a JSON document")
    doc = _parse(text, what, limits)
    if _openers(text) > limits.max_depth and _deeper_than(doc, limits.max_depth):
        raise _too_deep(what, limits)
    return doc


def _text(body: bytes | str, what: str) -> str:
    if isinstance(body, str):
        return body
    try:
        if body[:1] not in _NOT_UTF8_START and body[1:2] != b"\x00":
            return body.decode("utf-8", "surrogatepass")
        return body.decode(json.detect_encoding(body), "surrogatepass")  # UTF-16/32, a BOM
    except UnicodeDecodeError:
        raise ValidationError(f"{what} is not UTF-8 text") from None


def _parse(text: str, what: str, limits: JsonLimits) -> Any:
    long_digits = _long_digit_run(limits.max_int_digits).search(text) is not None
    decoder = _decoder(limits.max_int_digits if long_digits else None)
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _too_deep(what, limits) from None
    except _NotJson as exc:
        raise ValidationError(
            f"{what} contains {exc.args[0]}, which is not a JSON number; send a number or null"
        ) from None
    except _TooManyDigits as exc:
        raise _too_long(what, limits, f"an integer of {exc.digits} digits") from None
    except ValueError:  # Python's own int/str conversion limit, should the gate above miss
        raise _too_long(what, limits, "an integer over Python's digit limit") from None


class _NotJson(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, JSON (RFC 8259) has no such thing."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


@cache
def _decoder(max_int_digits: int | None) -> json.JSONDecoder:
    """Built once per limit (json.loads with hooks would build a decoder on every call)."""
    if max_int_digits is None:
        return json.JSONDecoder(parse_constant=_refuse_constant)
    return json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int(max_int_digits))


@cache
def _long_digit_run(max_digits: int) -> re.Pattern[str]:
    return re.compile(f"[0-9]{{{max_digits + 1}}}")


def _bounded_int(max_digits: int) -> Callable[[str], int]:
    def parse(literal: str) -> int:
        digits = len(literal.lstrip("-"))
        if digits > max_digits:
            raise _TooManyDigits(digits)
        return int(literal)

    return parse


def _openers(text: str) -> int:
    return text.count("[") + text.count("{")


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels (iterative: no recursion to exhaust)."""
    if not isinstance(doc, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _too_deep(what: str, limits: JsonLimits) -> InputLimitExceeded:
    return InputLimitExceeded(
        f"{what} nests arrays/objects deeper than {limits.max_depth} levels "
        f"(the JSON depth limit); flatten the document"
    )


def _too_long(what: str, limits: JsonLimits, found: str) -> InputLimitExceeded:
    return InputLimitExceeded(
        f"{what} holds {found}; the limit is {limits.max_int_digits} digits "
        f"(the JSON integer limit): send a big number as a string"
    )
