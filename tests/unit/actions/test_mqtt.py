"""mqtt publish against the real Mosquitto: the event (or the given payload) arrives on the
topic with its QoS and retain flag, one connection serves many publishes, a dead broker is a
retryable failure, and wrong topics or settings are refused when the rule is made."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import pytest

from ondo.actions.base import ActionRequest
from ondo.actions.model import Action
from ondo.actions.mqtt import MqttAction
from ondo.errors import RuleError
from tests.platform_ports import closed_port
from tests.services import require_mqtt


def broker() -> tuple[str, int]:
    """The test broker's host and port (require_mqtt gives its URL)."""
    parts = urlsplit(require_mqtt())
    return parts.hostname or "127.0.0.1", parts.port or 1883


EVENT = {"specversion": "1.0", "id": "e-1", "source": "fitbit", "type": "bp", "data": {"s": 1}}


def request(topic: str, args: dict[str, Any] | None = None) -> ActionRequest:
    return ActionRequest("key-1", "default", "pub", 0, Action("mqtt", topic, args), EVENT, "e")


async def receive(host: str, port: int, topic: str, count: int, publish: Any) -> list[Any]:
    """Subscribe to `topic`, run `publish()`, and return the first `count` messages."""
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        outcome = await publish()
        got = []
        async with asyncio.timeout(20):
            async for message in client.messages:
                got.append(message)
                if len(got) == count:
                    break
        return [outcome, got]


def test_the_event_is_published_and_one_connection_serves_all() -> None:
    host, port = broker()
    topic = f"ondo-test/{uuid.uuid4().hex}/alerts"
    kind = MqttAction(f"mqtt://{host}:{port}")
    kind.validate(Action("mqtt", topic, {"qos": 1}), "default")

    async def publish() -> Any:
        first = await kind.perform(request(topic, {"qos": 1}), 1)
        second = await kind.perform(request(topic, {"payload": {"hello": "world"}}), 1)
        return first, second, kind.connections

    async def scenario() -> list[Any]:
        try:
            return await receive(host, port, topic, 2, publish)
        finally:
            await kind.stop()

    (first, second, connections), got = asyncio.run(scenario())
    assert first.ok and first.detail["qos"] == 1 and first.detail["topic"] == topic
    assert second.ok and connections == 1
    assert json.loads(got[0].payload) == EVENT and got[0].qos == 1
    assert json.loads(got[1].payload) == {"hello": "world"}


def test_a_retained_text_payload_on_a_broker_given_by_the_rule() -> None:
    host, port = broker()
    topic = f"ondo-test/{uuid.uuid4().hex}/state"
    kind = MqttAction(f"mqtt://127.0.0.1:{closed_port()}")  # the default is not used
    args = {"retain": True, "payload": "on", "url": f"mqtt://{host}:{port}"}

    async def scenario() -> list[Any]:
        try:
            assert (await kind.perform(request(topic, args), 1)).ok
        finally:
            await kind.stop()

        async def nothing() -> None:
            return None

        got = await receive(host, port, topic, 1, nothing)  # subscribed after: retained
        async with aiomqtt.Client(host, port) as client:  # clear the retained message
            await client.publish(topic, b"", retain=True)
        return got

    _, got = asyncio.run(scenario())
    assert got[0].payload == b"on" and got[0].retain


def test_a_broker_that_is_down_is_a_retryable_failure() -> None:
    kind = MqttAction(f"mqtt://127.0.0.1:{closed_port()}")

    async def scenario() -> Any:
        try:
            return await kind.perform(request("ondo-test/x"), 1)
        finally:
            await kind.stop()

    result = asyncio.run(scenario())
    assert not result.ok and result.retryable
    assert "publishing to mqtt://127.0.0.1:" in result.detail["error"]
    assert kind.connections == 0


@pytest.mark.parametrize(
    ("topic", "args", "words"),
    [
        ("alerts/+/heat", None, "no \\+ or # wildcards"),
        ("alerts/#", None, "wildcards"),
        ("a", {"qos": 3}, "qos must be 0, 1 or 2"),
        ("a", {"retain": "yes"}, "retain must be true or false"),
        ("a", {"url": "http://broker"}, "mqtt://HOST"),
        ("a", {"colour": 1}, "'colour' is not a setting of mqtt"),
    ],
)
def test_what_cannot_be_published_is_refused(topic: str, args: Any, words: str) -> None:
    with pytest.raises(RuleError, match=words):
        MqttAction("mqtt://127.0.0.1:1883").validate(Action("mqtt", topic, args), "default")
