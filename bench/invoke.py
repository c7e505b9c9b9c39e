"""Invoke benchmark: ondo's runtime against the obvious alternatives, measured in the same run.

1. Cold start: the first invocation of a freshly prepared version, forked from its zygote on
   demand and (the default) taken from a spare forked ahead, against a fresh `python -c` spawn
   running the same handler inside the same sandbox layers.
2. Warm sync invoke over HTTP (`ondo up`, POST /v1/functions/bench/invoke) at concurrency 1
   (p50/p99) and 64 (invocations/s), against a plain Starlette endpoint calling the same
   handler in-process, served the same way (uvicorn). Both servers run side by side and are
   measured in alternating rounds, so that load drifting on a shared machine hits both alike.

Prints one JSON document. Targets: cold p50 <= 3 ms; warm p50 <= 2.5x the Starlette baseline;
warm throughput >= 0.4x the baseline. Run: `.venv/bin/python bench/invoke.py [--quick]`.

Backends (bench/configs.py): `--configs embedded,distributed` starts one `ondo up` per
configuration beside the baseline and measures all of them in the same alternating rounds
(`warm_http.configs.<name>`); `--bus/--store/--cluster` measure one given configuration. The
cold start and the warm runtime do not touch the bus or the store and are measured once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from configs import EMBEDDED, BackendConfig, add_arguments, chosen  # noqa: E402

from ondo.runtime import FunctionSpec, ZygoteRuntime  # noqa: E402
from ondo.runtime.zygote import JAIL, SANDBOX_PYTHON  # noqa: E402

HANDLER = """
def handler(event, context):
    return {"ok": True, "n": (event or {}).get("n"), "fn": context.function_name}
"""

# A fresh interpreter that enters the same sandbox layers as a zygote, imports the handler,
# runs it once and prints the result: what a runtime without zygotes does on every cold start.
FRESH_SPAWN = """
import importlib.util, json, os, sys
config = json.loads(sys.argv[1])
spec = importlib.util.spec_from_file_location("ondo_jail", config["jail_path"])
jail = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jail)
jail.enter_outer(config)
pid = os.fork()
if pid == 0:
    jail.die_with_parent()
    jail.enter_inner(config)
    sys.path[:0] = [config["task_root"]]
    os.chdir(config["task_root"])
    module = __import__(config["handler"].rpartition(".")[0])
    class Context:
        function_name = config["name"]
    result = getattr(module, config["handler"].rpartition(".")[2])({"n": 1}, Context())
    os.write(1, json.dumps(result).encode())
    os._exit(0)
os.waitpid(pid, 0)
"""

BASELINE_SERVER = """
import importlib, json, sys
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, sys.argv[1])
handler = importlib.import_module("app").handler

class Context:
    function_name = "bench"
    function_version = "1"
    aws_request_id = "baseline"

async def invoke(request: Request) -> Response:
    event = json.loads(await request.body() or b"null")
    return Response(json.dumps(handler(event, Context())), media_type="application/json")

app = Starlette(routes=[Route("/invoke", invoke, methods=["POST"])])
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[2]),
                                       log_level="warning", lifespan="on"))
server.run()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.5), 3),
        "p99": round(percentile(values, 0.99), 3),
        "n": len(values),
    }


# --- cold start ---------------------------------------------------------------------------


def bench_spec(code_dir: Path, version: int) -> FunctionSpec:
    return FunctionSpec(
        namespace="bench",
        name="bench",
        version=version,
        code_dir=code_dir,
        handler="app.handler",
        timeout_s=10.0,
        memory_mb=128,
        concurrency=64,
        network=False,
        environment={},
        layer_dir=None,
    )


async def cold_ondo(runtime: ZygoteRuntime, code_dir: Path, rounds: int) -> dict[str, Any]:
    totals, inits = [], []
    for version in range(1, rounds + 1):
        spec = bench_spec(code_dir, version)
        await runtime.prepare(spec)
        await asyncio.sleep(0.05)  # the first request comes after the deploy has settled
        started = time.perf_counter()
        outcome = await runtime.invoke(spec, b'{"n": 1}', f"cold-{version}")
        totals.append((time.perf_counter() - started) * 1000.0)
        assert outcome.status == "succeeded" and outcome.cold, outcome
        inits.append(outcome.init_ms)
        await runtime.retire(spec)
    return {"invoke_ms": summary(totals), "init_ms": summary(inits)}


async def cold_fresh_spawn(runtime: ZygoteRuntime, code_dir: Path, rounds: int) -> dict[str, Any]:
    spec = bench_spec(code_dir, 10_000)
    config = runtime._zygote_config(spec, "bench-fresh")  # the very same sandbox settings
    config["jail_path"] = str(JAIL)
    payload = json.dumps(config)
    totals = []
    for _ in range(rounds):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            SANDBOX_PYTHON, "-I", "-S", "-c", FRESH_SPAWN, payload,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        totals.append((time.perf_counter() - started) * 1000.0)
        assert json.loads(out)["ok"] is True, out
    runtime.sandbox.hooks.forget_pool("bench-fresh")
    return {"invoke_ms": summary(totals)}


async def cold_start(code_dir: Path, rounds: int) -> dict[str, Any]:
    runtime = ZygoteRuntime(spare_workers=0)  # every cold start forks from the zygote
    await runtime.start()
    try:
        on_demand = await cold_ondo(runtime, code_dir, rounds)
        fresh = await cold_fresh_spawn(runtime, code_dir, rounds)
        layers = {k: v["active"] for k, v in runtime.status()["sandbox"].items()}
    finally:
        await runtime.close()
    runtime = ZygoteRuntime()  # the platform's default: one spare forked ahead per version
    await runtime.start()
    try:
        spare = await cold_ondo(runtime, code_dir, rounds)
    finally:
        await runtime.close()
    return {
        "ondo_fork_from_zygote_on_demand": on_demand,
        "ondo_spare_worker_forked_ahead": spare,
        "fresh_python_spawn_in_sandbox": fresh,
        "sandbox_layers": layers,
        "speedup_p50_on_demand": round(
            fresh["invoke_ms"]["p50"] / on_demand["invoke_ms"]["p50"], 2
        ),
        "target": "cold p50 <= 3 ms",
        "target_met_on_demand": on_demand["invoke_ms"]["p50"] <= 3.0,
        "target_met_with_spare": spare["invoke_ms"]["p50"] <= 3.0,
    }


# --- warm, without HTTP ---------------------------------------------------------------------


async def warm_direct(code_dir: Path, count: int) -> dict[str, Any]:
    """The runtime's own share of a warm invocation: invoke() against calling the handler."""
    runtime = ZygoteRuntime()
    await runtime.start()
    spec = bench_spec(code_dir, 1)
    try:
        for _ in range(50):
            await runtime.invoke(spec, b'{"n": 0}', "warm-up")
        runtime_us = []
        for n in range(count):
            started = time.perf_counter()
            outcome = await runtime.invoke(spec, json.dumps({"n": n}).encode(), f"w{n}")
            runtime_us.append((time.perf_counter() - started) * 1e6)
            assert outcome.status == "succeeded" and not outcome.cold
    finally:
        await runtime.close()
    namespace: dict[str, Any] = {}
    exec(compile(HANDLER, "app.py", "exec"), namespace)

    class Context:
        function_name = "bench"

    direct_us = []
    for n in range(count):
        started = time.perf_counter()
        event = json.loads(json.dumps({"n": n}).encode())
        json.dumps(namespace["handler"](event, Context())).encode()
        direct_us.append((time.perf_counter() - started) * 1e6)
    return {
        "ondo_runtime_invoke_us": summary(runtime_us),
        "in_process_call_us": summary(direct_us),
        "note": "a warm invoke is one round trip to a sandboxed worker process",
    }


# --- warm over HTTP -------------------------------------------------------------------------


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client: little client overhead, so servers are compared."""

    def __init__(self, port: int, path: str, token: str | None) -> None:
        self.port, self.path, self.token = port, path, token

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, body: bytes) -> bytes:
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        content = await self.reader.readexactly(length)
        if b" 200 " not in status_line:
            raise RuntimeError(f"{status_line!r}: {content[:300]!r}")
        return content

    def close(self) -> None:
        self.writer.close()


async def latency_samples(port: int, path: str, token: str | None, count: int) -> list[float]:
    """Round-trip times (ms) of `count` sequential requests on one keep-alive connection."""
    client = HttpClient(port, path, token)
    await client.connect()
    for _ in range(50):  # warm-up: workers, connections, caches
        await client.post(b'{"n": 0}')
    samples = []
    for n in range(count):
        started = time.perf_counter()
        reply = await client.post(json.dumps({"n": n}).encode())
        samples.append((time.perf_counter() - started) * 1000.0)
        assert json.loads(reply)["n"] == n, reply
    client.close()
    return samples


async def throughput(
    port: int, path: str, token: str | None, clients: int, seconds: float
) -> dict[str, float]:
    connections = [HttpClient(port, path, token) for _ in range(clients)]
    await asyncio.gather(*(c.connect() for c in connections))
    await asyncio.gather(*(c.post(b'{"n": 0}') for c in connections))  # warm every worker
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(client: HttpClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client.post(b'{"n": 1}')
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in connections))
    elapsed = time.perf_counter() - started
    for client in connections:
        client.close()
    return {"invocations_per_s": round(done / elapsed, 1), "clients": clients, "seconds": elapsed}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


ROUNDS = 6  # the two servers are measured in alternating rounds, so both see the same load


async def alternate(
    servers: dict[str, tuple[int, str, str | None]], count: int, seconds: float
) -> dict[str, dict[str, Any]]:
    """Latency at concurrency 1 and throughput at 64 of each server, in alternating rounds:
    on a shared machine the load drifts, and rounds of one after the other would put the
    drift into the ratio."""
    samples: dict[str, list[float]] = {name: [] for name in servers}
    done: dict[str, float] = dict.fromkeys(servers, 0.0)
    spent: dict[str, float] = dict.fromkeys(servers, 0.0)
    for _ in range(ROUNDS):
        for name, (port, path, token) in servers.items():
            samples[name] += await latency_samples(port, path, token, max(1, count // ROUNDS))
            figures = await throughput(port, path, token, 64, seconds / ROUNDS)
            done[name] += figures["invocations_per_s"] * figures["seconds"]
            spent[name] += figures["seconds"]
    return {
        name: {
            "concurrency_1_ms": summary(samples[name]),
            "concurrency_64": {
                "invocations_per_s": round(done[name] / spent[name], 1),
                "clients": 64,
            },
        }
        for name in servers
    }


def start_server(
    command: list[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, env=environment)
    log.close()
    try:
        wait_for_port(port, process)
    except RuntimeError:
        sys.stderr.write(log_path.read_text())
        stop(process)
        raise
    return process


def warm_http(
    work: Path,
    code_dir: Path,
    count: int,
    seconds: float,
    configs: Sequence[BackendConfig] = (EMBEDDED,),
) -> dict[str, Any]:
    app_dir = code_dir.parent
    (app_dir / "ondo.yaml").write_text(
        textwrap.dedent(f"""
        name: bench
        functions:
          bench:
            code: ./{code_dir.name}
            handler: app.handler
            timeout: 10
            memory: 128
            concurrency: 64
        """)
    )
    names = {c.name: "ondo_http" if len(configs) == 1 else f"ondo_http_{c.name}" for c in configs}
    base_port = free_port()
    base_cmd = [sys.executable, "-c", BASELINE_SERVER, str(code_dir), str(base_port)]
    servers: dict[str, tuple[int, str, str | None]] = {}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for config in configs:
            data_dir, port = work / f"data-{config.name}", free_port()
            ondo_cmd = [sys.executable, "-m", "ondo", "--data-dir", str(data_dir), "up"]
            ondo_cmd += ["--port", str(port), "--app", str(app_dir)]
            log = work / f"ondo-{config.name}.log"
            processes.append(start_server(ondo_cmd, port, log, config.env()))
            token = (data_dir / "admin.token").read_text().strip()
            servers[names[config.name]] = (port, "/v1/functions/bench/invoke", token)
        processes.append(start_server(base_cmd, base_port, work / "baseline.log"))
        servers["starlette_in_process"] = (base_port, "/invoke", None)
        figures = asyncio.run(alternate(servers, count, seconds))
    finally:
        for process in processes:
            stop(process)
        for config in configs:
            config.drop()
    base_figures = figures["starlette_in_process"]
    compared = {
        config.name: {
            "backend": config.describe(),
            names[config.name]: figures[names[config.name]],
            **ratios(figures[names[config.name]], base_figures),
        }
        for config in configs
    }
    shared = {"starlette_in_process": base_figures, "rounds": ROUNDS}
    if len(configs) == 1:
        return {**next(iter(compared.values())), **shared}
    return {"configs": compared, **shared}


def ratios(ondo_figures: dict[str, Any], base_figures: dict[str, Any]) -> dict[str, Any]:
    p50_ratio = ondo_figures["concurrency_1_ms"]["p50"] / base_figures["concurrency_1_ms"]["p50"]
    tput_ratio = (
        ondo_figures["concurrency_64"]["invocations_per_s"]
        / base_figures["concurrency_64"]["invocations_per_s"]
    )
    return {
        "p50_ratio": round(p50_ratio, 2),
        "throughput_ratio": round(tput_ratio, 2),
        "targets": "p50 ratio <= 2.5, throughput ratio >= 0.4",
        "p50_target_met": p50_ratio <= 2.5,
        "throughput_target_met": tput_ratio >= 0.4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    add_arguments(parser)
    args = parser.parse_args()
    configs = chosen(args)
    rounds, count, seconds = (10, 200, 2.0) if args.quick else (40, 2000, 5.0)
    with tempfile.TemporaryDirectory(prefix="ondo-bench-") as tmp:
        work = Path(tmp)
        code_dir = work / "app" / "bench"
        code_dir.mkdir(parents=True)
        (code_dir / "app.py").write_text(HANDLER)
        os.chmod(work, 0o755)
        report: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg()},
            "cold_start": asyncio.run(cold_start(code_dir, rounds)),
            "warm_runtime": asyncio.run(warm_direct(code_dir, count)),
            "warm_http": warm_http(work, code_dir, count, seconds, configs),
        }
        report["machine"]["load_avg_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
