"""A function's identity: each invocation gets a short-lived token that can do only what the
function's `permissions:` allow (emit these event types, invoke these functions), never more.

The token is stateless, so issuing one costs no database write: `ondo_fn.` + base64url(JSON
payload) + `.` + base64url(HMAC-SHA256 of the encoded payload). The key is the platform's,
created once in the store (`platform_keys`), so every node sharing the store signs and checks
alike. A token lives for the function's timeout plus `EXPIRY_MARGIN_S`, on the platform's clock;
it cannot be revoked one by one (nothing is stored), which is why it lives no longer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ondo.backends.store.repositories.keys import PlatformKeyRepository
from ondo.backends.store.repositories.tokens import Principal

FUNCTION_TOKEN_PREFIX = "ondo_fn."
KEY_NAME = "function-tokens"
KEY_BYTES = 32
# Beyond the function's timeout: the platform kills the worker at the timeout, so this only
# covers a request the handler sent just before it, still in flight.
EXPIRY_MARGIN_S = 30.0
# A token longer than this is not one we issued (the payload is a few hundred bytes).
MAX_TOKEN_CHARS = 16 * 1024


@dataclass(frozen=True)
class FunctionClaims:
    """What a function token says: who runs, in which invocation, allowed what, until when."""

    namespace: str
    function: str
    version: int
    invocation: str
    scope: tuple[str, ...]
    expires_at: float

    def principal(self) -> Principal:
        return Principal(
            name=self.function,
            namespace=self.namespace,
            role="developer",  # narrowed to `scope` by policy.allows (kind "function")
            kind="function",
            token_id=f"fn:{self.invocation}",
            expires_at=self.expires_at,
            scope=self.scope,
        )


def scope_of(emit: Sequence[str], invoke: Sequence[str]) -> tuple[str, ...]:
    """The scope entries (as `Principal.scope` and policy.allows read them) of a function's
    `permissions: {emit: [TYPE-GLOB…], invoke: [FUNCTION-GLOB…]}`."""
    return (
        *(f"emit:type:{glob}" for glob in emit),
        *(f"invoke:function:{glob}" for glob in invoke),
    )


class FunctionTokens:
    """Issues and checks function tokens with the platform's key (`load` it first)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._key: bytes | None = None

    async def load(self, keys: PlatformKeyRepository) -> None:
        """Read the platform's signing key, creating it on the very first start."""
        self._key = await keys.ensure(KEY_NAME, secrets.token_bytes(KEY_BYTES), self.clock())

    @property
    def ready(self) -> bool:
        return self._key is not None

    def issue(
        self,
        namespace: str,
        function: str,
        version: int,
        invocation: str,
        scope: Sequence[str],
        timeout_s: float,
    ) -> str:
        """A token for one invocation, valid for `timeout_s` + EXPIRY_MARGIN_S from now."""
        payload = {
            "ns": namespace,
            "fn": function,
            "v": version,
            "inv": invocation,
            "scope": list(scope),
            "exp": self.clock() + timeout_s + EXPIRY_MARGIN_S,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{FUNCTION_TOKEN_PREFIX}{body}.{_b64(self._sign(body))}"

    def verify(self, token: str) -> Principal | None:
        """The function principal of a genuine, unexpired token; None for anything else."""
        claims = self.claims(token)
        if claims is None or self.clock() >= claims.expires_at:
            return None
        return claims.principal()

    def claims(self, token: str) -> FunctionClaims | None:
        """What a genuine token says (expired or not); None if it was not signed with our key."""
        if self._key is None or len(token) > MAX_TOKEN_CHARS:
            return None
        if not token.startswith(FUNCTION_TOKEN_PREFIX) or not token.isascii():
            return None
        body, dot, signature = token[len(FUNCTION_TOKEN_PREFIX) :].partition(".")
        if not dot or not hmac.compare_digest(_b64(self._sign(body)), signature):
            return None
        return _claims(json.loads(_unb64(body)))  # ours: well-formed by construction

    def _sign(self, body: str) -> bytes:
        assert self._key is not None, "FunctionTokens.load() was not awaited"
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()


def _claims(doc: dict[str, Any]) -> FunctionClaims:
    return FunctionClaims(
        namespace=str(doc["ns"]),
        function=str(doc["fn"]),
        version=int(doc["v"]),
        invocation=str(doc["inv"]),
        scope=tuple(str(entry) for entry in doc["scope"]),
        expires_at=float(doc["exp"]),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""
