"""Benchmark the mqtt source: MQTT messages -> events appended per second, beside the same number
of events POSTed to /v1/events in batches, measured in the same run.

Run:  .venv/bin/python bench/sources_mqtt.py [--quick] [--configs embedded,distributed]

Starts `ondo up`, deploys an mqtt source on the real Mosquitto (127.0.0.1:1883) under a topic
prefix of its own, then alternates the two sides over --rounds rounds:

- mqtt: a publisher in another process (`mosquitto_pub -l`, else paho-mqtt; QoS 1) publishes
  --messages JSON readings; the figure is messages / seconds from the first publish until the
  source's `events` counter (GET /v1/sources/NAME, as ondo_source_events_total) counts them
  all. The publisher is kept at most WINDOW messages ahead of what the source appended:
  Mosquitto holds at most `max_queued_messages` (1000 by default) QoS 1 messages per subscriber
  beyond those in flight and drops the rest, so an unpaced publisher would measure the broker's
  queue limit instead.
- http_batch (the baseline): the same number of events POSTed in batches of 100
  (application/cloudevents-batch+json) over 8 keep-alive connections, all answered 202.

Each round also reports `cpu_us_per_event`: the CPU time (user + system, all threads) of the
`ondo up` process during the round, divided by the events: much less sensitive to other load on
the machine than the rate.

The source asks the broker for a window of 2000 unacknowledged messages (MQTT 5 Receive
Maximum; Mosquitto's own `max_inflight_messages` default is 20) and acknowledges each batch (up
to 1000) only after appending it. The broker's settings are its defaults, left as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

import httpx  # noqa: E402
import yaml  # noqa: E402
from configs import BackendConfig, add_arguments, chosen  # noqa: E402
from tests.functional.loadgen import Connection  # noqa: E402
from tests.functional.platform import RunningPlatform  # noqa: E402

BROKER = ("127.0.0.1", 1883)
BATCH = "application/cloudevents-batch+json"
BATCH_SIZE = 100
CONNECTIONS = 8
WINDOW = 1500  # messages the publisher may be ahead: within the broker's queue (1000) + in flight
STALL_S = 30.0
# How often the source's counter is read: every 5 ms cost the platform ~5% of its CPU (200
# authenticated GETs a second); 20 ms still ends a round of seconds within 1%.
POLL_S = 0.02
TARGET = 5000


def readings(count: int) -> list[bytes]:
    return [
        json.dumps({"n": n, "systolic": 100 + n % 60, "diastolic": 60 + n % 40}).encode() + b"\n"
        for n in range(count)
    ]


class MosquittoPub:
    """`mosquitto_pub -l` (C, QoS 1): one message per line written to its stdin."""

    name = "mosquitto_pub"

    def __init__(self, topic: str) -> None:
        host, port = BROKER
        args = ["mosquitto_pub", "-h", host, "-p", str(port), "-q", "1", "-M", "1000"]
        self.proc = subprocess.Popen([*args, "-t", topic, "-l"], stdin=subprocess.PIPE)

    def send(self, lines: list[bytes]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(lines))
        self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


def paho_publisher(topic: str, lines: Any) -> None:
    """In its own process: publish each line received at QoS 1 (when mosquitto_pub is absent)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4()}")
    client.max_inflight_messages_set(1000)
    client.connect(*BROKER)
    client.loop_start()
    infos = []
    while (chunk := lines.get()) is not None:
        infos += [client.publish(topic, line.rstrip(b"\n"), qos=1) for line in chunk]
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()


class PahoPub:
    name = "paho-mqtt"

    def __init__(self, topic: str) -> None:
        self.lines: Any = multiprocessing.Queue()
        self.proc = multiprocessing.Process(target=paho_publisher, args=(topic, self.lines))
        self.proc.start()

    def send(self, lines: list[bytes]) -> None:
        self.lines.put(lines)

    def close(self) -> None:
        self.lines.put(None)
        self.proc.join(60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_event_us(cpu: float, events: int) -> float:
    return round(cpu * 1e6 / events, 1) if events else 0.0


def source_events(api: httpx.Client, name: str) -> int:
    return int(api.get(f"/v1/sources/{name}").json()["events"])


def mqtt_round(api: httpx.Client, pid: int, prefix: str, count: int) -> dict[str, Any]:
    """Publish `count` readings, at most WINDOW ahead of the source; messages/s until all are
    appended (the publisher in its own process)."""
    lines = readings(count)
    base = source_events(api, "bench")
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    pub = (MosquittoPub if shutil.which("mosquitto_pub") else PahoPub)(f"{prefix}/p1/bp")
    written = arrived = 0
    progress_at = time.monotonic()
    while arrived < count:
        upto = min(count, arrived + WINDOW)
        if upto > written:
            pub.send(lines[written:upto])
            written = upto
            if written == count:
                pub.close()
        time.sleep(POLL_S)
        now_arrived = source_events(api, "bench") - base
        if now_arrived > arrived:
            arrived, progress_at = now_arrived, time.monotonic()
        elif time.monotonic() - progress_at > STALL_S:
            break
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu
    if written < count:
        pub.close()
    return {
        "events_per_s": round(arrived / elapsed),
        "cpu_us_per_event": per_event_us(cpu, arrived),
        "arrived": arrived,
        "published": written,
        "seconds": round(elapsed, 3),
        "publisher": pub.name,
    }


def http_round(platform: RunningPlatform, run: str, count: int) -> dict[str, Any]:
    events = [
        {
            "specversion": "1.0",
            "id": f"{run}-{n}",
            "source": "bench-http",
            "type": "health.blood_pressure",
            "subject": f"p{n % 16}",
            "datacontenttype": "application/json",
            "data": {"n": n, "systolic": 100 + n % 60, "diastolic": 60 + n % 40},
        }
        for n in range(count)
    ]
    bodies = [json.dumps(events[i : i + BATCH_SIZE]).encode() for i in range(0, count, BATCH_SIZE)]

    async def post_all() -> tuple[float, int]:
        pending = iter(bodies)
        refused = 0

        async def worker() -> None:
            nonlocal refused
            connection = Connection(platform.url, platform.token)
            try:
                for body in pending:
                    refused += (await connection.post("/v1/events", body, BATCH)).status != 202
            finally:
                await connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started, refused

    pid = platform.proc.pid if platform.proc is not None else 0
    cpu = cpu_seconds(pid)
    elapsed, refused = asyncio.run(post_all())
    cpu = cpu_seconds(pid) - cpu
    return {
        "events_per_s": round(count / elapsed),
        "cpu_us_per_event": per_event_us(cpu, count),
        "refused": refused,
    }


def deploy(platform: RunningPlatform, root: Path, prefix: str) -> None:
    app = root / "bench-app"
    app.mkdir()
    manifest = {
        "name": "bench-mqtt",
        "sources": {
            "bench": {
                "kind": "mqtt",
                "url": f"mqtt://{BROKER[0]}:{BROKER[1]}",
                "session_expiry": "5m",
                "topics": [{"topic": f"{prefix}/{{subject}}/bp", "type": "health.blood_pressure"}],
            }
        },
    }
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    done = platform.cli("deploy", str(app))
    if done.returncode != 0:
        raise SystemExit(f"deploy failed: {done.stderr}")


def measure_on(config: BackendConfig, rounds: int, count: int) -> dict[str, Any]:
    prefix = f"ondo-bench/{uuid.uuid4().hex[:10]}"
    mqtt: list[dict[str, Any]] = []
    http: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ondo-bench-mqtt-") as tmp:
        root = Path(tmp)
        try:
            with RunningPlatform(root / "data", env=config.env()) as platform:
                deploy(platform, root, prefix)
                assert platform.proc is not None
                pid = platform.proc.pid
                with platform.client() as api:
                    deadline = time.monotonic() + 30
                    while api.get("/v1/sources/bench").json()["state"] != "connected":
                        if time.monotonic() > deadline:
                            raise SystemExit("the mqtt source did not connect")
                        time.sleep(0.05)
                    mqtt_round(api, pid, prefix, min(count, 1000))  # warm up both paths
                    http_round(platform, "warm", min(count, 1000))
                    for index in range(rounds):
                        sides = ["mqtt", "http"] if index % 2 == 0 else ["http", "mqtt"]
                        for side in sides:
                            if side == "mqtt":
                                mqtt.append(mqtt_round(api, pid, prefix, count))
                            else:
                                http.append(http_round(platform, f"r{index}", count))
                    errors = api.get("/v1/sources/bench").json()["errors"]
        finally:
            config.drop()
    return summary(config, mqtt, http, errors)


def summary(
    config: BackendConfig, mqtt: list[dict[str, Any]], http: list[dict[str, Any]], errors: int
) -> dict[str, Any]:
    mqtt_rates = [r["events_per_s"] for r in mqtt]
    http_rates = [r["events_per_s"] for r in http]
    mqtt_cpu = [r["cpu_us_per_event"] for r in mqtt]
    http_cpu = [r["cpu_us_per_event"] for r in http]
    return {
        "backend": {"name": config.name, **config.describe()},
        "mqtt_events_per_s": mqtt_rates,
        "mqtt_range": [min(mqtt_rates), max(mqtt_rates)],
        "mqtt_rounds": mqtt,
        "http_batch_events_per_s": http_rates,
        "http_batch_range": [min(http_rates), max(http_rates)],
        "mqtt_cpu_us_per_event_range": [min(mqtt_cpu), max(mqtt_cpu)],
        "http_batch_cpu_us_per_event_range": [min(http_cpu), max(http_cpu)],
        "http_refused": sum(r["refused"] for r in http),
        "ratio_mqtt_vs_http_batch_median": round(
            statistics.median(mqtt_rates) / statistics.median(http_rates), 3
        ),
        "source_errors": errors,
        "target_events_per_s": TARGET,
        "meets_target": min(mqtt_rates) >= TARGET
        and all(r["arrived"] == r["published"] for r in mqtt),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--messages", type=int, default=0, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args()
    count = args.messages or (5_000 if args.quick else 20_000)
    load_before = os.getloadavg()  # other work on the machine skews every figure
    measured = {c.name: measure_on(c, args.rounds, count) for c in chosen(args)}
    out: dict[str, Any] = {
        "bench": "sources_mqtt",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "messages_per_round": count,
        "rounds": args.rounds,
        "configs": measured,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
