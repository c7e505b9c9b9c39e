"""The API Gateway HTTP API payload format 2.0 event, and the Lambda answer mapped to HTTP."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ondo.sources.http_payload import (
    BadLambdaAnswer,
    HttpRequest,
    RequestContext,
    clf_time,
    lambda_answer,
    payload_v2,
)

NOW = 1583348638.390  # 2020-03-04T19:03:58.390Z


def request(**changes: Any) -> HttpRequest:
    fields: dict[str, Any] = {
        "method": "POST",
        "path": "/orders/a b",
        "raw_path": "/orders/a%20b",
        "query": b"p=1&p=2&q=%C3%A9&empty=",
        "headers": [
            (b"host", b"shop.example.org:8080"),
            (b"user-agent", b"curl/8"),
            (b"x-twice", b"one"),
            (b"x-twice", b"two"),
            (b"cookie", b"a=1; b=2"),
            (b"cookie", b"c=3"),
            (b"authorization", b"Bearer secret"),
        ],
        "body": b'{"n": 1}',
        "source_ip": "192.0.2.1",
        "protocol": "HTTP/1.1",
    }
    fields.update(changes)
    return HttpRequest(**fields)


CONTEXT = RequestContext("default", "shop", "POST /orders/{id}", "req-1", NOW)


def test_every_field_of_the_payload() -> None:
    event = payload_v2(request(), CONTEXT, {"id": "a b"})
    assert event == {
        "version": "2.0",
        "routeKey": "POST /orders/{id}",
        "rawPath": "/orders/a%20b",
        "rawQueryString": "p=1&p=2&q=%C3%A9&empty=",
        "cookies": ["a=1", "b=2", "c=3"],
        "headers": {
            "host": "shop.example.org:8080",
            "user-agent": "curl/8",
            "x-twice": "one,two",
            "authorization": "Bearer secret",
        },
        "queryStringParameters": {"p": "1,2", "q": "é", "empty": ""},
        "requestContext": {
            "accountId": "default",
            "apiId": "shop",
            "domainName": "shop.example.org",
            "domainPrefix": "shop",
            "http": {
                "method": "POST",
                "path": "/orders/a b",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "curl/8",
            },
            "requestId": "req-1",
            "routeKey": "POST /orders/{id}",
            "stage": "$default",
            "time": "04/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": '{"n": 1}',
        "isBase64Encoded": False,
        "pathParameters": {"id": "a b"},
    }
    json.dumps(event)  # plain JSON all through


def test_fields_without_values_are_left_out_as_api_gateway_does() -> None:
    bare = request(method="GET", query=b"", headers=[], body=b"", source_ip="")
    event = payload_v2(bare, CONTEXT, {})
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert absent not in event
    assert event["isBase64Encoded"] is False and event["headers"] == {}
    assert event["requestContext"]["domainName"] == ""
    assert event["requestContext"]["http"]["userAgent"] == ""


def test_binary_bodies_are_base64_and_hidden_headers_are_left_out() -> None:
    binary = bytes(range(256))
    event = payload_v2(request(body=binary), CONTEXT, {}, frozenset({b"authorization"}))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary
    assert "authorization" not in event["headers"]


def test_time_is_the_common_log_format() -> None:
    assert clf_time(0) == "01/Jan/1970:00:00:00 +0000"
    assert clf_time(1703980799) == "30/Dec/2023:23:59:59 +0000"


# --- answers --------------------------------------------------------------------------------


def test_a_status_code_answer_maps_status_headers_cookies_and_body() -> None:
    status, headers, body = lambda_answer(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-N": 7, "X-Yes": True},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["s=1; HttpOnly", "t=2"],
            "body": "created",
        },
        None,
    )
    assert status == 201 and body == b"created"
    assert headers == [
        (b"content-type", b"text/plain"),
        (b"x-n", b"7"),
        (b"x-yes", b"true"),
        (b"x-many", b"a"),
        (b"x-many", b"b"),
        (b"set-cookie", b"s=1; HttpOnly"),
        (b"set-cookie", b"t=2"),
    ]


def test_base64_bodies_are_decoded_and_content_type_defaults_to_json() -> None:
    encoded = base64.b64encode(b"\x00\xff").decode()
    status, headers, body = lambda_answer(
        {"statusCode": "204", "body": encoded, "isBase64Encoded": True}, None
    )
    assert (status, headers, body) == (204, [(b"content-type", b"application/json")], b"\x00\xff")
    assert lambda_answer({"statusCode": 200}, None)[2] == b""
    assert lambda_answer({"statusCode": 200, "body": {"a": 1}}, None)[2] == b'{"a":1}'


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"ok": True}, b'{"ok":true}'),
        ([1, "two"], b'[1,"two"]'),
        (None, b"null"),
        (3, b"3"),
        ("just text", b"just text"),
    ],
)
def test_any_other_value_is_a_200_json_answer(result: Any, expected: bytes) -> None:
    assert lambda_answer(result, None) == (200, [(b"content-type", b"application/json")], expected)


def test_the_workers_encoding_is_answered_as_is() -> None:
    assert lambda_answer({"a": 1}, b'{"a": 1}')[2] == b'{"a": 1}'


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"statusCode": "teapot"}, "statusCode must be an integer"),
        ({"statusCode": 99}, "statusCode must be an integer"),
        ({"statusCode": True}, "statusCode must be an integer"),
        ({"statusCode": 200, "headers": []}, "headers must be an object"),
        ({"statusCode": 200, "headers": {"bad name": "x"}}, "not a valid HTTP header name"),
        ({"statusCode": 200, "headers": {"x": "a\r\nb: c"}}, "line break"),
        ({"statusCode": 200, "headers": {"x": {"nested": 1}}}, "string or a number"),
        ({"statusCode": 200, "multiValueHeaders": {"x": "a"}}, "must be a list"),
        ({"statusCode": 200, "cookies": "a=1"}, "cookies must be a list of strings"),
        ({"statusCode": 200, "body": "!", "isBase64Encoded": True}, "not base64"),
    ],
)
def test_malformed_status_code_answers_are_refused(result: Any, why: str) -> None:
    with pytest.raises(BadLambdaAnswer, match=why):
        lambda_answer(result, None)
