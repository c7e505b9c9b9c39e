"""HTTP routes benchmark: a warm request through an http source's route against a direct sync
invoke of the same function (POST /v1/functions/bench/invoke), on the same `ondo up`.

Both ask the same handler for the same answer; the route's request also carries the API
Gateway payload 2.0 event that the route builds (the handler reads `n` from its body). Three
paths are measured in alternating rounds (load drifting on a shared machine hits each alike):
the direct invoke, a token route (the same bearer token check) and a public route, each at
concurrency 1 (p50/p99, one request of each in turn) and 16 clients each, all three at once
(requests/s).

Prints one JSON document. Target (issue 12): route p50 <= 1.2x the direct invoke's, and
route throughput >= 1/1.2 of it. Run: `.venv/bin/python bench/http_routes.py [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from configs import add_arguments, chosen
from invoke import HttpClient, free_port, start_server, stop, summary, throughput

HANDLER = """
import json

def handler(event, context):
    if event.get("version") == "2.0":  # through a route: the request's body is the input
        event = json.loads(event["body"])
    return {"ok": True, "n": event.get("n"), "fn": context.function_name}
"""

MANIFEST = """
name: bench
functions:
  bench: {code: ./bench, handler: app.handler, timeout: 10, memory: 128, concurrency: 64}
sources:
  bench:
    kind: http
    routes:
      - {method: POST, path: /call, function: bench, auth: token}
      - {method: POST, path: "/public/{id}", function: bench, auth: public}
"""

CLIENTS = 16
WINDOWS = 6
TARGET = 1.2


async def alternate(
    paths: dict[str, str], port: int, token: str, rounds: int, count: int, seconds: float
) -> dict[str, dict[str, Any]]:
    samples: dict[str, list[float]] = {name: [] for name in paths}
    per_s: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, taken in (await interleaved(paths, port, token, count)).items():
            samples[name] += taken
        # All paths at once, each with its own clients: the machine's drifting load hits them
        # alike, and a path that costs the server more completes fewer requests.
        for _ in range(WINDOWS):
            mixed = await asyncio.gather(
                *(
                    throughput(port, path, token, CLIENTS, seconds / WINDOWS)
                    for path in paths.values()
                )
            )
            for name, figures in zip(paths, mixed, strict=True):
                per_s[name].append(figures["invocations_per_s"])
    return {
        name: {
            "concurrency_1_ms": summary(samples[name]),
            f"concurrency_{CLIENTS}_per_s": round(sum(per_s[name]) / len(per_s[name]), 1),
            "per_window_per_s": per_s[name],
        }
        for name in paths
    }


async def interleaved(
    paths: dict[str, str], port: int, token: str, count: int
) -> dict[str, list[float]]:
    """Round-trip times (ms) at concurrency 1, one request of each path in turn, so that load
    drifting on a shared machine hits every path alike."""
    clients = {name: HttpClient(port, path, token) for name, path in paths.items()}
    for client in clients.values():
        await client.connect()
        for _ in range(50):  # warm-up: workers, connections, caches
            await client.post(b'{"n": 0}')
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for n in range(count):
        body = json.dumps({"n": n}).encode()
        for name, client in clients.items():
            started = time.perf_counter()
            reply = await client.post(body)
            samples[name].append((time.perf_counter() - started) * 1000.0)
            assert json.loads(reply)["n"] == n, reply
    for client in clients.values():
        client.close()
    return samples


def wait_connected(port: int, token: str) -> None:
    """The source attaches just after the deploy: wait until its routes are served."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = httpx.get(f"http://127.0.0.1:{port}/v1/sources/bench", headers=headers)
        if shown.status_code == 200 and shown.json()["state"] == "connected":
            return
        time.sleep(0.1)
    raise RuntimeError(f"source bench not connected: {shown.text}")


def ratios(route: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    p50 = route["concurrency_1_ms"]["p50"] / direct["concurrency_1_ms"]["p50"]
    key = f"concurrency_{CLIENTS}_per_s"
    slower = direct[key] / route[key]
    return {
        "p50_ratio": round(p50, 3),
        "throughput_slowdown": round(slower, 3),
        "target_met": p50 <= TARGET and slower <= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    add_arguments(parser)
    args = parser.parse_args()
    config = chosen(args)[0]
    rounds, count, seconds = (3, 200, 2.0) if args.quick else (5, 600, 4.0)
    with tempfile.TemporaryDirectory(prefix="ondo-bench-http-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        (work / "app" / "bench").mkdir(parents=True)
        (work / "app" / "bench" / "app.py").write_text(HANDLER)
        (work / "app" / "ondo.yaml").write_text(textwrap.dedent(MANIFEST))
        data_dir, port = work / "data", free_port()
        command = [sys.executable, "-m", "ondo", "--data-dir", str(data_dir), "up"]
        command += ["--port", str(port), "--app", str(work / "app")]
        process = start_server(command, port, work / "ondo.log", config.env())
        try:
            token = (data_dir / "admin.token").read_text().strip()
            wait_connected(port, token)
            paths = {
                "direct_invoke": "/v1/functions/bench/invoke",
                "token_route": "/http/default/bench/call",
                "public_route": "/http/default/bench/public/7",
            }
            figures = asyncio.run(alternate(paths, port, token, rounds, count, seconds))
        finally:
            stop(process)
            config.drop()
    direct = figures["direct_invoke"]
    report = {
        "backend": config.describe(),
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "rounds": rounds,
        **figures,
        "token_route_vs_direct": ratios(figures["token_route"], direct),
        "public_route_vs_direct": ratios(figures["public_route"], direct),
        "target": f"route p50 and throughput within {TARGET}x of the direct sync invoke",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
