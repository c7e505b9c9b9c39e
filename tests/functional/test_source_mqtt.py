"""The mqtt source on a running platform and the real Mosquitto: a published reading drives a rule
that invokes a function (the examples/iot app, as `ondo up --app examples/iot` runs it); bad
payloads and an unreachable broker are shown by `ondo sources`, and the platform keeps going."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import yaml

from tests.functional.conftest import EXAMPLES
from tests.functional.platform import RunningPlatform, wait_for
from tests.services import MQTT_HOST, MQTT_PORT, require_mqtt

pytestmark = pytest.mark.mqtt


def publish(topic: str, payload: bytes | str) -> None:
    async def once() -> None:
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT) as client:
            await client.publish(topic, payload, qos=1)

    asyncio.run(once())


def events_of_type(client: httpx.Client, type_: str) -> list[dict[str, Any]]:
    found = client.get("/v1/events", params={"type": type_}).json()["events"]
    return [stored["event"] for stored in found]


def source_status(client: httpx.Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/v1/sources/{name}").json()
    return found


def invocations(client: httpx.Client, function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/v1/functions/{function}/invocations").json()[
        "invocations"
    ]
    return [r for r in found if r["status"] not in ("queued", "running")]


def test_a_published_reading_invokes_the_function_of_the_iot_example(tmp_path: Path) -> None:
    require_mqtt()
    subject = f"alice-{uuid.uuid4().hex[:8]}"  # the example's topics are on a shared broker
    with RunningPlatform(tmp_path / "data", apps=[EXAMPLES / "iot"]) as ondo, ondo.client() as api:
        wait_for(lambda: source_status(api, "fitbit")["state"] == "connected")
        publish(f"fitbit/{subject}/bp", json.dumps({"systolic": 120, "diastolic": 80}))
        publish(f"fitbit/{subject}/bp", json.dumps({"systolic": 150, "diastolic": 95}))

        def mine() -> list[dict[str, Any]]:
            found = invocations(api, "check-pressure")
            return [r for r in found if r["result"] and r["result"]["subject"] == subject]

        done = wait_for(mine)
        assert [(r["status"], r["result"]["systolic"]) for r in done] == [("succeeded", 150)]
        events = events_of_type(api, "health.blood_pressure")
        readings = [e for e in events if e.get("subject") == subject]
        assert [e["data"]["systolic"] for e in readings] == [120, 150]
        assert {(e["source"], e["mqtttopic"]) for e in readings} == {
            ("fitbit", f"fitbit/{subject}/bp")
        }


def test_bad_payloads_and_an_unreachable_broker_are_shown_and_the_platform_goes_on(
    tmp_path: Path,
) -> None:
    broker = require_mqtt()
    prefix = f"ondo-test/{uuid.uuid4().hex[:10]}"
    app = tmp_path / "meters"
    app.mkdir()
    manifest = {
        "name": "meters",
        "sources": {
            "meter": {
                "kind": "mqtt",
                "url": broker,
                "session_expiry": "2m",
                "topics": [{"topic": f"{prefix}/{{subject}}/kwh", "type": "meter.read"}],
            },
            "away": {"kind": "mqtt", "url": "mqtt://127.0.0.1:1", "topics": [f"{prefix}/#"]},
        },
    }
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with RunningPlatform(tmp_path / "data") as ondo, ondo.client() as api:
        deployed = ondo.cli("deploy", str(app))
        assert deployed.returncode == 0, deployed.stderr
        wait_for(lambda: source_status(api, "meter")["state"] == "connected")
        publish(f"{prefix}/m1/kwh", b"\xff\xfe not json")
        publish(f"{prefix}/m1/kwh", b'"' + b"x" * (2 << 20) + b'"')  # the broker drops it
        publish(f"{prefix}/m1/kwh", b'"' + b"x" * (300 << 10) + b'"')  # over the event limit
        publish(f"{prefix}/m1/kwh", '{"subject": "m2", "kwh": 3}')  # a payload names no one
        publish(f"{prefix}/m1/kwh", "12.5")
        wait_for(lambda: source_status(api, "meter")["events"] == 2)
        wait_for(lambda: source_status(api, "away")["restarts"] >= 1)

        shown = ondo.cli("sources", "show", "meter")
        assert shown.returncode == 0, shown.stderr
        assert f"message on topic '{prefix}/m1/kwh' was not made an event" in shown.stdout
        assert "in its JSON form; the limit is" in shown.stdout  # the last: 300 KiB
        assert source_status(api, "meter")["errors"] == 2, shown.stdout  # and not UTF-8
        listed = ondo.cli("sources", "list")
        assert listed.returncode == 0, listed.stderr
        away = next(line for line in listed.stdout.splitlines() if line.startswith("away"))
        assert "retrying" in away and "refused" in away.lower()
        assert api.get("/healthz").status_code == 200
        events = events_of_type(api, "meter.read")
        assert [(e["subject"], e["data"]) for e in events] == [
            ("m1", {"subject": "m2", "kwh": 3}),
            ("m1", 12.5),
        ]
