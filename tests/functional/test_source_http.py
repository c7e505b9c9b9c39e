"""The http source kind on a real `ondo up`, through httpx: routes to functions (API Gateway
payload 2.0 in, the Lambda answer out), a token route, a signed webhook turned into an event
that a rule reacts to, a route set on its own port, and the API still needing its token."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, free_port, wait_for

SECRET = "webhook-secret-for-tests"
RULE = 'on github.push from shop where body.ref == "refs/heads/main" do invoke hooked'

CODE = """
import json

def echo(event, context):
    return {
        "statusCode": 201,
        "headers": {"X-Order": event.get("pathParameters", {}).get("id", ""), "X-N": 7},
        "cookies": ["seen=1; Path=/", "lang=en"],
        "body": json.dumps(event),
    }

def plain(event, context):
    return {"ok": True, "path": event["rawPath"]}

def text(event, context):
    return "just text"

def broken(event, context):
    raise RuntimeError("boom")

def bad_answer(event, context):
    return {"statusCode": "teapot"}

def hooked(event, context):
    return event
"""


def write_app(root: Path, port: int) -> Path:
    functions = {
        name: {"code": "./fn", "handler": f"app.{name.replace('-', '_')}"}
        for name in ("echo", "plain", "text", "broken", "bad-answer", "hooked")
    }
    signed = {"secret": SECRET}
    routes: list[dict[str, Any]] = [
        {"method": "GET", "path": "/orders/{id}", "function": "echo", "auth": "public"},
        {"method": "ANY", "path": "/files/{rest+}", "function": "plain", "auth": "public"},
        {"method": "GET", "path": "/text", "function": "text", "auth": "public"},
        {"method": "GET", "path": "/broken", "function": "broken", "auth": "public"},
        {"method": "GET", "path": "/bad", "function": "bad-answer", "auth": "public"},
        {"method": "POST", "path": "/private", "function": "echo"},  # auth: token (default)
        {
            "method": "POST",
            "path": "/github",
            "event": "github.push",
            "id_header": "X-GitHub-Delivery",
            "auth": "hmac",
            "hmac": signed,
        },
        {
            "method": "POST",
            "path": "/stamped",
            "event": "shop.stamped",
            "auth": "hmac",
            "hmac": {**signed, "timestamp_header": "X-Timestamp", "max_age": "1m"},
        },
        {"method": "POST", "path": "/note", "event": "shop.note", "auth": "public"},
    ]
    manifest = {
        "name": "shop",
        "functions": functions,
        "sources": {
            "shop": {"kind": "http", "routes": routes},
            "hooks": {
                "kind": "http",
                "port": port,
                "routes": [{"path": "/ping", "function": "plain", "auth": "public"}],
            },
        },
        "rules": [
            {
                "name": "on-push",
                "when": RULE,
            }
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "fn").mkdir(exist_ok=True)
    (root / "fn" / "app.py").write_text(textwrap.dedent(CODE))
    return root


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningPlatform, int]]:
    root = tmp_path_factory.mktemp("http")
    port = free_port()
    with RunningPlatform(root / "data", apps=[write_app(root / "shop", port)]) as running:
        with running.client() as api:
            wait_for(lambda: _all_connected(api))
        yield running, port


def _all_connected(api: httpx.Client) -> bool:
    sources = api.get("/v1/sources").json()["sources"]
    return len(sources) == 2 and all(s["state"] == "connected" for s in sources)


def test_public_route_gets_payload_v2_and_its_answer_is_mapped(
    shop: tuple[RunningPlatform, int],
) -> None:
    platform, _ = shop
    answer = httpx.get(
        f"{platform.url}/http/default/shop/orders/42",
        params=[("x", "1"), ("x", "2"), ("y", "")],
        headers={"User-Agent": "tests/1", "Cookie": "a=1; b=2", "X-Twice": "one"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["x-order"] == "42" and answer.headers["x-n"] == "7"
    assert answer.headers.get_list("set-cookie") == ["seen=1; Path=/", "lang=en"]
    event = answer.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /orders/{id}"
    assert event["rawPath"] == "/orders/42"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"id": "42"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["user-agent"] == "tests/1" and event["headers"]["x-twice"] == "one"
    assert "cookie" not in event["headers"]
    assert event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/orders/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests/1",
    }
    assert context["stage"] == "$default" and context["routeKey"] == "GET /orders/{id}"
    assert context["accountId"] == "default" and context["apiId"] == "shop"
    assert context["domainName"] == "127.0.0.1" and len(context["requestId"]) == 36


def test_plain_returns_strings_errors_and_unknown_paths(shop: tuple[RunningPlatform, int]) -> None:
    platform, _ = shop
    base = f"{platform.url}/http/default/shop"
    plain = httpx.put(f"{base}/files/a/b.txt", content=b"\xff\x00")
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    assert plain.json() == {"ok": True, "path": "/files/a/b.txt"}
    text = httpx.get(f"{base}/text")
    assert text.status_code == 200 and text.text == "just text"
    for broken in ("/broken", "/bad"):
        failed = httpx.get(base + broken)
        assert failed.status_code == 502 and failed.json() == {"message": "Internal Server Error"}
    assert httpx.get(f"{base}/orders").status_code == 404
    assert httpx.post(f"{base}/orders/42").status_code == 404  # GET only
    assert httpx.get(f"{platform.url}/http/default/nosuch/orders/1").status_code == 404
    with platform.client() as api:
        shown = api.get("/v1/sources/shop").json()
        assert "statusCode must be an integer" in shown["last_error"]


def test_token_route_refuses_anonymous_and_hides_the_token(
    shop: tuple[RunningPlatform, int],
) -> None:
    platform, _ = shop
    url = f"{platform.url}/http/default/shop/private"
    anonymous = httpx.post(url, json={"n": 1})
    assert anonymous.status_code == 401 and anonymous.json() == {"message": "Unauthorized"}
    wrong = httpx.post(url, json={"n": 1}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    with platform.client() as api:
        answer = api.post(url, json={"n": 1})
        tokens = {
            namespace: api.post("/v1/tokens", json={"principal": "app", "namespace": namespace})
            for namespace in ("default", "other")
        }
    assert answer.status_code == 201, answer.text
    event = answer.json()
    assert json.loads(event["body"]) == {"n": 1}
    assert "authorization" not in event["headers"]
    for namespace, status in (("default", 201), ("other", 403)):
        token = tokens[namespace].json()["token"]
        sent = httpx.post(url, json={}, headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == status, sent.text


def test_signed_webhook_becomes_an_event_that_a_rule_acts_on(
    shop: tuple[RunningPlatform, int],
) -> None:
    platform, _ = shop
    url = f"{platform.url}/http/default/shop/github"
    body = json.dumps({"ref": "refs/heads/main", "commits": 2}).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    json_type = {"Content-Type": "application/json"}
    other = "sha256=" + hmac.new(b"another secret", body, hashlib.sha256).hexdigest()
    for signature in (None, "sha256=" + "0" * 64, other, good.replace("sha256=", "sha1=")):
        headers = (
            json_type if signature is None else {**json_type, "X-Hub-Signature-256": signature}
        )
        refused = httpx.post(url, content=body, headers=headers)
        assert refused.status_code == 401, refused.text
    upper = {**json_type, "X-Hub-Signature-256": "sha256=" + good[7:].upper()}
    no_delivery = httpx.post(url, content=body, headers=upper)
    assert no_delivery.status_code == 400 and "x-github-delivery header" in no_delivery.text
    delivery = {**upper, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    accepted = httpx.post(url, content=body, headers=delivery)
    assert accepted.status_code == 202, accepted.text
    event_id = accepted.json()["id"]
    assert accepted.json() == {"id": delivery["X-GitHub-Delivery"], "duplicate": False}
    again = httpx.post(url, content=body, headers=delivery)  # GitHub's redelivery
    assert again.json() == {"id": event_id, "duplicate": True}
    with platform.client() as api:
        event = api.get(f"/v1/events/{event_id}").json()["event"]
        assert event["source"] == "shop" and event["type"] == "github.push"
        assert event["subject"] == "/github"
        data = event["data"]
        assert data["body"] == {"ref": "refs/heads/main", "commits": 2}
        assert data["route"] == "POST /github" and data["method"] == "POST"
        assert data["headers"]["x-hub-signature-256"] == upper["X-Hub-Signature-256"]
        assert data["headers"]["x-github-delivery"] == event_id

        def ran() -> list[dict[str, Any]]:
            found = api.get("/v1/functions/hooked/invocations").json()["invocations"]
            return [r for r in found if r["status"] == "succeeded"]

        (record,) = wait_for(ran)
        assert record["trigger"] == "rule:on-push"
        shown = api.get("/v1/sources/shop").json()
        assert shown["events"] == 1
        assert shown["settings"]["routes"][6]["hmac"]["secret"] == "***"
        assert len(api.get("/v1/events", params={"type": "github.push"}).json()["events"]) == 1
        assert SECRET not in json.dumps(shown)


def test_a_route_set_on_its_own_port(shop: tuple[RunningPlatform, int]) -> None:
    platform, port = shop
    answer = httpx.get(f"http://127.0.0.1:{port}/ping")
    assert answer.status_code == 200 and answer.json() == {"ok": True, "path": "/ping"}
    # Not under the platform's prefix too, and no API on that port.
    assert httpx.get(f"{platform.url}/http/default/hooks/ping").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{port}/v1/functions").status_code == 404


def test_the_api_still_needs_its_token(shop: tuple[RunningPlatform, int]) -> None:
    platform, _ = shop
    assert httpx.get(f"{platform.url}/v1/functions").status_code == 401
    invoke = httpx.post(f"{platform.url}/v1/functions/echo/invoke", json={})
    assert invoke.status_code == 401
    # Dot segments (httpx would remove plain ones) stay inside the source's routes.
    sneaky = httpx.get(f"{platform.url}/http/default/shop/%2e%2e/%2e%2e/%2e%2e/v1/functions")
    assert sneaky.status_code == 404 and "functions" not in sneaky.text


def test_bad_routes_are_refused_at_deploy_with_file_and_line(
    shop: tuple[RunningPlatform, int], tmp_path: Path
) -> None:
    platform, _ = shop
    cases = {
        "path: /a/{rest+}/b": "greedy parameter {rest+} must be the last segment",
        "auth: hmac": "auth: hmac needs `hmac: {secret: …}`",
        "method: FETCH": "method must be one of",
    }
    for line, message in cases.items():
        app = tmp_path / "bad"
        app.mkdir(exist_ok=True)
        key, _, value = line.partition(": ")
        route = {"path": "/x", "event": "x.y", key: value}
        manifest = {"name": "bad", "sources": {"bad": {"kind": "http", "routes": [route]}}}
        (app / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        out = platform.cli("deploy", str(app))
        assert out.returncode == 1, out.stdout
        assert "ondo.yaml:" in out.stderr and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_a_port_in_use_is_retried_and_shown(
    shop: tuple[RunningPlatform, int], tmp_path: Path
) -> None:
    platform, _ = shop
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = tmp_path / "busy"
        app.mkdir()
        route = {"path": "/x", "event": "x.y", "auth": "public"}
        source = {"kind": "http", "port": port, "routes": [route]}
        manifest = {"name": "busy", "sources": {"busy": source}}
        (app / "ondo.yaml").write_text(yaml.safe_dump(manifest))
        assert platform.cli("deploy", str(app)).returncode == 0
        with platform.client() as api:
            shown = wait_for(lambda: _retrying(api, "busy"))
        assert f"cannot listen on 127.0.0.1:{port}" in shown["last_error"]
        assert platform.alive() and httpx.get(f"{platform.url}/healthz").status_code == 200


def _retrying(api: httpx.Client, name: str) -> dict[str, Any] | None:
    shown: dict[str, Any] = api.get(f"/v1/sources/{name}").json()
    return shown if shown.get("state") == "retrying" else None


# Last: they emit on the module's source, whose event count the tests above check.
def test_an_event_over_the_event_size_limit_is_a_413_that_says_so(
    shop: tuple[RunningPlatform, int],
) -> None:
    platform, _ = shop
    url = f"{platform.url}/http/default/shop/note"
    refused = httpx.post(url, json={"text": "x" * (300 << 10)})  # under the body limit (6 MiB)
    assert refused.status_code == 413
    assert "in its JSON form; the limit is" in refused.json()["message"]
    assert httpx.post(url, json={"text": "short"}).status_code == 202


def test_a_timestamped_webhook_is_taken_once_within_its_window(
    shop: tuple[RunningPlatform, int],
) -> None:
    platform, _ = shop
    url = f"{platform.url}/http/default/shop/stamped"
    body = b'{"order": 7}'

    def headers(stamp: int) -> dict[str, str]:
        signed = str(stamp).encode() + b"." + body
        digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}", "X-Timestamp": str(stamp)}

    now = int(time.time())
    first = httpx.post(url, content=body, headers=headers(now))
    assert first.status_code == 202, first.text
    assert httpx.post(url, content=body, headers=headers(now)).status_code == 401  # replayed
    assert httpx.post(url, content=body, headers=headers(now - 3600)).status_code == 401  # old
    unstamped = {"X-Hub-Signature-256": headers(now)["X-Hub-Signature-256"]}
    assert httpx.post(url, content=body, headers=unstamped).status_code == 401
