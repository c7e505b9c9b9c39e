"""A request as Lambda sees it behind API Gateway, and a Lambda's answer as the client sees it.

`payload_v2` builds the HTTP API payload format 2.0 event (AWS's "Create AWS Lambda proxy
integrations for HTTP APIs": version, routeKey, rawPath, rawQueryString, cookies, headers,
queryStringParameters, requestContext, body, pathParameters, isBase64Encoded), so a handler
written for a Lambda behind an HTTP API runs unchanged. What differs, and why:

- rawPath and requestContext.http.path are the path below the source's prefix
  (`/http/NS/SOURCE`), the path the route templates are written against, as a Lambda behind
  the API's own endpoint sees it;
- requestContext.accountId is the namespace (as in ondo's function ARNs), apiId the source's
  name, domainName the Host header;
- no authorizer, authentication or stageVariables: ondo has none of those.

`lambda_answer` maps what the function returned as API Gateway does for format 2.0: a dict
with `statusCode` is the response (headers, cookies -> one set-cookie each, body,
isBase64Encoded); any other JSON value is a 200 `application/json` answer whose body is that
JSON (a string: the string itself); a failed invocation is 502 `{"message": "Internal Server
Error"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Headers = Sequence[tuple[bytes, bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

JSON_TYPE = (b"content-type", b"application/json")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class HttpRequest:
    """One request, below the source's prefix."""

    method: str
    path: str  # decoded, e.g. /orders/42
    raw_path: str  # as sent, e.g. /orders/a%20b
    query: bytes
    headers: Headers
    body: bytes
    source_ip: str = ""
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class RequestContext:
    namespace: str
    source: str
    route_key: str
    request_id: str
    now: float  # seconds since the epoch


def header_values(headers: Headers, hide: frozenset[bytes] = frozenset()) -> dict[str, str]:
    """Lower-case names; repeated headers joined with commas; `cookie` and `hide` left out."""
    joined: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == b"cookie" or name in hide:
            continue
        key, value = name.decode("latin-1"), raw_value.decode("latin-1")
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def cookies_of(headers: Headers) -> list[str]:
    """Every cookie of every Cookie header, one string each (`name=value`)."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() == b"cookie":
            text = value.decode("latin-1")
            found += [part.strip() for part in text.split(";") if part.strip()]
    return found


def query_values(query: bytes) -> dict[str, str]:
    """Query parameters decoded; repeated ones joined with commas (format 2.0)."""
    joined: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def body_of(body: bytes) -> tuple[str, bool]:
    """The body as the event carries it: text when it is UTF-8, else base64 (and True)."""
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def clf_time(now: float) -> str:
    """`12/Mar/2020:19:03:58 +0000`, the format of requestContext.time."""
    t = time.gmtime(now)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def payload_v2(
    request: HttpRequest,
    context: RequestContext,
    path_parameters: Mapping[str, str],
    hide_headers: frozenset[bytes] = frozenset(),
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for `request` (see the module doc)."""
    headers = header_values(request.headers, hide_headers)
    host = headers.get("host", "")
    domain = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.query.decode("latin-1"),
    }
    cookies = cookies_of(request.headers)
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = query_values(request.query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": context.namespace,
        "apiId": context.source,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": context.request_id,
        "routeKey": context.route_key,
        "stage": "$default",
        "time": clf_time(context.now),
        "timeEpoch": int(context.now * 1000),
    }
    if request.body:
        event["body"], event["isBase64Encoded"] = body_of(request.body)
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


# --- the answer ------------------------------------------------------------------------------


class BadLambdaAnswer(ValueError):
    """Raised when a function's `statusCode` answer is not one API Gateway would send."""


def message_answer(status: int, message: str) -> Answer:
    """API Gateway's own answers: `{"message": "..."}`."""
    return status, [JSON_TYPE], json.dumps({"message": message}).encode()


INTERNAL_ERROR: Answer = message_answer(502, "Internal Server Error")


def lambda_answer(result: Any, result_json: bytes | None) -> Answer:
    """The HTTP answer for a succeeded invocation's `result` (BadLambdaAnswer if malformed)."""
    if isinstance(result, dict) and "statusCode" in result:
        return _structured(result)
    if isinstance(result, str):
        return 200, [JSON_TYPE], result.encode()
    body = result_json if result_json is not None else _dumps(result)
    return 200, [JSON_TYPE], body


def _structured(result: Mapping[str, Any]) -> Answer:
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadLambdaAnswer(f"statusCode must be an integer 100-599, got {status!r}")
    headers = _answer_headers(result.get("headers"), result.get("multiValueHeaders"))
    for cookie in _list_of_text(result.get("cookies"), "cookies"):
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    body = _answer_body(result.get("body"), result.get("isBase64Encoded", False))
    if not any(name == b"content-type" for name, _ in headers):
        headers.append(JSON_TYPE)
    return status, headers, body


def _answer_headers(single: Any, multi: Any) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for name, value in _mapping(single, "headers").items():
        headers.append((_header_name(name), _header_text(value)))
    for name, values in _mapping(multi, "multiValueHeaders").items():
        if not isinstance(values, list):
            raise BadLambdaAnswer(f"multiValueHeaders[{name!r}] must be a list")
        headers += [(_header_name(name), _header_text(v)) for v in values]
    return headers


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadLambdaAnswer(f"{what} must be an object, got {type(value).__name__}")
    return value


def _header_name(name: Any) -> bytes:
    if not isinstance(name, str) or not name or any(c in name for c in ":\r\n \t"):
        raise BadLambdaAnswer(f"header name {name!r} is not a valid HTTP header name")
    return name.lower().encode("latin-1", "replace")


def _header_text(value: Any) -> bytes:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise BadLambdaAnswer(f"header value {value!r} must be a string or a number")
    if "\r" in text or "\n" in text:
        raise BadLambdaAnswer("a header value may not contain a line break")
    return text.encode("latin-1", "replace")


def _list_of_text(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadLambdaAnswer(f"{what} must be a list of strings")
    if any("\r" in v or "\n" in v for v in value):
        raise BadLambdaAnswer(f"{what} may not contain line breaks")
    return value


def _answer_body(body: Any, encoded: Any) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):  # as API Gateway does with a non-string body: its JSON
        return _dumps(body)
    if encoded is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadLambdaAnswer("isBase64Encoded is true but body is not base64") from exc
    return body.encode("utf-8")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
