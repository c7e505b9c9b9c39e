"""`mqtt TOPIC [with {"qos": 1, "retain": false, "url": "mqtt://…", "payload": …}]`: publish.

The message is the triggering event in CloudEvents' structured JSON form, or the `payload` given
in `with` (JSON; a string is sent as it is). The broker is `url`, else the platform's
ONDO_MQTT_URL (mqtt://127.0.0.1:1883); `mqtts://` uses TLS, `mqtt://user:password@host` logs in.
One connection per broker is kept open and shared by every publish; when it fails, the publish
is retried with backoff (the action queue's) on a new connection. QoS 1 and 2 wait for the
broker's acknowledgement, so an acknowledged publish is stored by the broker (at least once).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

from ondo.actions.base import ActionRequest, ActionResult
from ondo.errors import ActionNotAvailable, RuleError

if TYPE_CHECKING:
    import aiomqtt

    from ondo.actions.model import Action

WITH_KEYS: Final = ("qos", "retain", "url", "payload")
PUBLISH_TIMEOUT_S: Final = 10.0
MAX_TOPIC_BYTES: Final = 65535


class MqttAction:
    kind = "mqtt"
    destinations = True

    def __init__(self, default_url: str) -> None:
        self._default_url = default_url  # ONDO_MQTT_URL
        self._clients: dict[str, aiomqtt.Client] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def validate(self, action: Action, namespace: str) -> None:
        where = f"mqtt {action.target}"
        check_topic(action.target, where)
        args = action.args or {}
        for key in args:
            if key not in WITH_KEYS:
                raise RuleError(
                    f"{where}: {key!r} is not a setting of mqtt; it takes {', '.join(WITH_KEYS)}"
                )
        settings_of(args, self._default_url, where)
        try:
            import aiomqtt  # noqa: F401
        except ImportError:
            raise ActionNotAvailable(f"{where}: needs aiomqtt: pip install 'ondo[mqtt]'") from None

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        import aiomqtt

        action = request.action
        args = action.args or {}
        try:
            url, qos, retain = settings_of(args, self._default_url, f"mqtt {action.target}")
        except RuleError as exc:
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        payload = payload_of(request)
        try:
            client = await self._client(url)
            await client.publish(
                action.target, payload, qos=qos, retain=retain, timeout=PUBLISH_TIMEOUT_S
            )
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            await self._drop(url)  # the next attempt connects again
            where = _safe_url(url)
            error = f"publishing to {where} failed: {type(exc).__name__}: {exc}"
            return ActionResult(ok=False, detail={"error": error}, retryable=True)
        detail = {
            "topic": action.target,
            "broker": _safe_url(url),
            "qos": qos,
            "bytes": len(payload),
        }
        return ActionResult(ok=True, detail=detail)

    @property
    def connections(self) -> int:
        """Brokers this kind holds a connection to now."""
        return len(self._clients)

    async def _client(self, url: str) -> aiomqtt.Client:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # one connection per broker, made once
            client = self._clients.get(url)
            if client is None:
                client = new_client(url)
                await client.__aenter__()
                self._clients[url] = client
            return client

    async def _drop(self, url: str) -> None:
        client = self._clients.pop(url, None)
        if client is not None:
            await _close(client)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await _close(client)


async def _close(client: aiomqtt.Client) -> None:
    try:
        await client.__aexit__(None, None, None)
    except Exception:  # closing a broken connection may fail; it is gone either way
        return


def new_client(url: str) -> aiomqtt.Client:
    import aiomqtt

    parts = urlsplit(url)
    tls = ssl.create_default_context() if parts.scheme == "mqtts" else None
    return aiomqtt.Client(
        hostname=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        identifier=f"ondo-actions-{os.getpid()}-{os.urandom(4).hex()}",
        tls_context=tls,
        timeout=PUBLISH_TIMEOUT_S,
    )


def settings_of(args: Mapping[str, Any], default_url: str, where: str) -> tuple[str, int, bool]:
    """(broker URL, qos, retain) of an action; RuleError naming a wrong one."""
    qos, retain, url = args.get("qos", 0), args.get("retain", False), args.get("url", default_url)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise RuleError(f"{where}: qos must be 0, 1 or 2, got {qos!r}")
    if not isinstance(retain, bool):
        raise RuleError(f"{where}: retain must be true or false, got {retain!r}")
    check_broker_url(url, where)
    return str(url), int(qos), retain


def check_broker_url(url: Any, where: str) -> None:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        ok = parts is not None and parts.scheme in ("mqtt", "mqtts") and bool(parts.hostname)
        _ = parts.port if parts is not None else None  # a port that is not a number raises
    except ValueError:
        ok = False
    if not ok:
        raise RuleError(
            f"{where}: the broker URL must be mqtt://HOST[:PORT] or mqtts://…, got {url!r}"
        )


def check_topic(topic: str, where: str) -> None:
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise RuleError(
            f"{where}: publish to one topic such as alerts/heat (no + or # wildcards, not empty)"
        )
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise RuleError(f"{where}: the topic is longer than {MAX_TOPIC_BYTES} bytes")


def payload_of(request: ActionRequest) -> bytes:
    given = (request.action.args or {}).get("payload")
    if isinstance(given, str):
        return given.encode()
    body = dict(request.event) if given is None else given
    return json.dumps(body, separators=(",", ":")).encode()


def _safe_url(url: str) -> str:
    """The broker URL without its password, for records and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 1883}"
