"""`webhook URL [with {"secret_env": "VAR", "timeout": 10}]`: POST the event to a URL, signed.

The body is the triggering event in CloudEvents' structured JSON form
(`application/cloudevents+json`). Headers: `X-Ondo-Signature: sha256=<hex>`, the HMAC-SHA256
of the exact body bytes under the secret; `X-Ondo-Idempotency-Key`, the job's key, the same on
every retry so the receiver can drop repeats; `X-Ondo-Attempt`. The secret is the environment
variable the rule names (`secret_env`) or else the platform's ONDO_WEBHOOK_SECRET; a webhook
with neither is refused when the rule is defined (an unsigned call could be forged).

The platform makes the call (not a sandbox), so only http:// and https:// URLs are accepted.
Connection errors, timeouts, 5xx, 408 and 429 are retried with backoff; any other answer
outside 2xx (redirects are not followed) dead-letters the job at once: retrying will not help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx

from ondo.actions.base import ActionRequest, ActionResult
from ondo.errors import RuleError

if TYPE_CHECKING:
    from ondo.actions.model import Action

SIGNATURE_HEADER: Final = "X-Ondo-Signature"
IDEMPOTENCY_HEADER: Final = "X-Ondo-Idempotency-Key"
DEFAULT_TIMEOUT_S: Final = 10.0
MAX_TIMEOUT_S: Final = 60.0
RETRYABLE_STATUSES: Final = frozenset({408, 429})
WITH_KEYS: Final = ("secret_env", "timeout")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAction:
    kind = "webhook"
    destinations = True

    def __init__(self, secret: str, secret_env: Callable[[str], str | None]) -> None:
        self._secret = secret  # ONDO_WEBHOOK_SECRET
        self._secret_env = secret_env  # a rule's `secret_env`: the variable's value, or None
        self._client: httpx.AsyncClient | None = None

    def validate(self, action: Action, namespace: str) -> None:
        where = f"webhook {action.target}"
        check_url(action.target, where)
        args = action.args or {}
        for key in args:
            if key not in WITH_KEYS:
                raise RuleError(
                    f"{where}: {key!r} is not a setting of webhook; it takes {', '.join(WITH_KEYS)}"
                )
        _timeout(args, where)
        self._secret_of(args, where)

    def _secret_of(self, args: Mapping[str, Any], where: str) -> str:
        name = args.get("secret_env")
        if name is not None:
            found = self._secret_env(name) if isinstance(name, str) else None
            if not found:
                raise RuleError(
                    f"{where}: secret_env {name!r} names no environment variable of the platform"
                    " that holds a secret; set it where `ondo up` runs"
                )
            return found
        if not self._secret:
            raise RuleError(
                f"{where}: webhooks are signed and no secret is set: set ONDO_WEBHOOK_SECRET"
                ' for the platform, or give the rule with {"secret_env": "VARIABLE"}'
            )
        return self._secret

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        where = f"webhook {request.action.target}"
        args = request.action.args or {}
        try:
            secret = self._secret_of(args, where)
            timeout = _timeout(args, where)
        except RuleError as exc:  # the secret went away since the rule was made
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        body = json.dumps(dict(request.event), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            SIGNATURE_HEADER: sign(secret, body),
            IDEMPOTENCY_HEADER: request.key,
            "X-Ondo-Attempt": str(attempt),
            "User-Agent": "ondo-webhook",
        }
        try:
            answer = await self._http().post(
                request.action.target, content=body, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return ActionResult(ok=False, detail={"error": error}, retryable=True)
        return result_of(answer.status_code, answer.text)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def result_of(status: int, text: str) -> ActionResult:
    detail: dict[str, Any] = {"status": status}
    if 200 <= status < 300:
        return ActionResult(ok=True, detail=detail)
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    why = "" if retryable else " (not retried: the same request would be refused again)"
    if 300 <= status < 400:
        why = " (redirects are not followed: point the rule at the final URL)"
    detail["error"] = f"the receiver answered {status}{why}: {text[:200]}".rstrip(": ")
    return ActionResult(ok=False, detail=detail, retryable=retryable)


def check_url(url: str, where: str) -> None:
    """Only http(s) URLs with a host: the platform makes the call from its own process."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise RuleError(f"{where}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise RuleError(
            f"{where}: a webhook URL is http:// or https:// with a host, e.g. webhook"
            f' "https://example.com/hook"; got scheme {parts.scheme or "none"!r}'
        )


def _timeout(args: Mapping[str, Any], where: str) -> float:
    value = args.get("timeout", DEFAULT_TIMEOUT_S)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 < value <= MAX_TIMEOUT_S
    ):
        raise RuleError(
            f"{where}: timeout must be seconds in (0, {MAX_TIMEOUT_S:g}], got {value!r}"
        )
    return float(value)
