"""webhook against a real HTTP server: the signed CloudEvents body, the idempotency key, which
answers are retried, and the URLs and secrets refused when the rule is made."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.model import Action
from ondo.actions.webhook import WebhookAction, sign
from ondo.errors import RuleError
from tests.http_capture import CaptureServer, capture
from tests.platform_ports import closed_port

SECRET = "s3cret"
EVENT = {"specversion": "1.0", "id": "e-1", "source": "shop", "type": "order.placed", "data": {}}


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    yield from capture()


def request(url: str, args: dict[str, Any] | None = None) -> ActionRequest:
    return ActionRequest("key-1", "default", "hook", 0, Action("webhook", url, args), EVENT, "e")


def perform(kind: WebhookAction, req: ActionRequest, attempt: int = 1) -> ActionResult:
    async def go() -> ActionResult:
        try:
            return await kind.perform(req, attempt)
        finally:
            await kind.stop()

    return asyncio.run(go())


def test_the_event_is_posted_signed_with_its_idempotency_key(server: CaptureServer) -> None:
    kind = WebhookAction(SECRET, {}.get)
    kind.validate(Action("webhook", server.url("/hook")), "default")
    result = perform(kind, request(server.url("/hook")), attempt=2)
    assert result.ok and result.detail == {"status": 200}
    got = server.to("/hook")[0]
    assert got.json() == EVENT
    assert got.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-ondo-signature"] == f"sha256={expected}"
    assert got.headers["x-ondo-idempotency-key"] == "key-1"
    assert got.headers["x-ondo-attempt"] == "2"
    assert sign("other", got.body) != got.headers["x-ondo-signature"]


def test_a_rule_may_name_its_own_secret(server: CaptureServer) -> None:
    kind = WebhookAction("", {"SHOP_HOOK_SECRET": "per-rule"}.get)
    args = {"secret_env": "SHOP_HOOK_SECRET", "timeout": 5}
    kind.validate(Action("webhook", server.url("/h"), args), "default")
    assert perform(kind, request(server.url("/h"), args)).ok
    got = server.to("/h")[0]
    assert got.headers["x-ondo-signature"] == sign("per-rule", got.body)
    assert json.loads(got.body)["id"] == "e-1"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False), (302, False)],
)
def test_which_answers_are_retried(server: CaptureServer, status: int, retryable: bool) -> None:
    server.answer("/h", status)
    result = perform(WebhookAction(SECRET, {}.get), request(server.url("/h")))
    assert not result.ok and result.retryable is retryable
    assert result.detail["status"] == status
    assert f"answered {status}" in result.detail["error"]


def test_a_connection_error_is_retried() -> None:
    result = perform(WebhookAction(SECRET, {}.get), request(f"http://127.0.0.1:{closed_port()}/h"))
    assert not result.ok and result.retryable
    assert "ConnectError" in result.detail["error"]


@pytest.mark.parametrize(
    ("url", "args", "words"),
    [
        ("file:///etc/passwd", None, "http:// or https://"),
        ("ftp://example.com/x", None, "scheme 'ftp'"),
        ("http:///nohost", None, "with a host"),
        ("https://example.com/h", {"secret_env": "NOT_SET"}, "secret_env 'NOT_SET'"),
        ("https://example.com/h", {"timeout": 0}, "timeout must be seconds"),
        ("https://example.com/h", {"retries": 3}, "'retries' is not a setting"),
    ],
)
def test_what_cannot_be_called_is_refused(url: str, args: Any, words: str) -> None:
    with pytest.raises(RuleError, match=words.replace("(", r"\(").replace("/", "/")):
        WebhookAction(SECRET, {}.get).validate(Action("webhook", url, args), "default")


def test_a_webhook_without_a_secret_is_refused() -> None:
    with pytest.raises(RuleError, match="set ONDO_WEBHOOK_SECRET"):
        WebhookAction("", {}.get).validate(Action("webhook", "https://example.com/h"), "default")
