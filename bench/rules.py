"""Benchmark "rules": events over HTTP -> rule -> async function -> completed record, end to end.

Run:  .venv/bin/python bench/rules.py [--quick] [--configs embedded,distributed]
      .venv/bin/python bench/rules.py --bus nats://127.0.0.1:4222 --store postgresql://...

Starts `ondo up` (the embedded default: SQLite bus and store, local sandboxes) with one function
(`echo`, returns the id it was given) and one rule (`on bench.hit do invoke echo`), then measures
in the same run:

- saturation: N events posted as fast as the client can (batches of 100); events/s from the
  first post to the last completed invocation; every event must complete exactly once.
- paced: events posted one per request at a fixed rate (500/s); latency from just before the
  post to the invocation's `finished_at` (same machine, same wall clock): p50, p99.
- the baseline: the same function invoked directly (`POST /v1/functions/echo/invoke?mode=async`,
  no rule, no bus; an async invocation is a job of the action queue too, for its retries),
  saturated and paced the same way.
- condition cost: one evaluation of a compiled EventBridge pattern
  (`ondo.patterns.compile(p).matches(e)`) against the same test as CEL
  (`ondo.rules.conditions.Condition(cel).evaluate(e)`).

Targets (issue 5): >= 2,000 events/s sustained with nothing lost; p99 <= 20 ms at 500 events/s.
On PostgreSQL + NATS (issue 11): >= 1,000 events/s sustained with nothing lost.
The JSON printed says whether each was met; nothing here asserts.

`--sustain RATE [--sustain-seconds 60]` adds a long paced run of rule events (`sustained`): every
event must complete once, and `end_to_end_events_per_s` (events completed over the time from the
first post to the last completion) must reach the target; `--events N` sizes the saturation runs.

Backends (bench/configs.py): `--configs embedded,distributed` measures both configurations in the
same run, each on a fresh platform, one after the other (the figures of each are under
`configs.<name>`); `--bus/--store/--cluster` measure one given configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from configs import EMBEDDED, BackendConfig, add_arguments, chosen  # noqa: E402

from ondo.patterns import compile as compile_pattern  # noqa: E402
from ondo.rules.conditions import Condition  # noqa: E402

TARGET_EVENTS_PER_S = 2000
TARGET_P99_MS = 20.0
TARGET_DISTRIBUTED_EVENTS_PER_S = 1000
PACED_RATE = 500

ECHO = """
def handler(event, context):
    data = event.get("data") if isinstance(event, dict) else None
    return {"id": (data or event or {}).get("n")}
"""

MANIFEST = """
name: bench
functions:
  echo:
    code: ./echo
    handler: app.handler
    timeout: 10
    concurrency: {concurrency}
rules:
  - name: bench
    when: on bench.hit do invoke echo
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    """`ondo up` in a subprocess with its own data dir; killed with its process tree."""

    def __init__(
        self,
        root: Path,
        concurrency: int,
        destinations: str = "all",
        backend: BackendConfig = EMBEDDED,
    ) -> None:
        self.root = root
        app = root / "app"
        (app / "echo").mkdir(parents=True)
        (app / "echo" / "app.py").write_text(ECHO)
        (app / "ondo.yaml").write_text(MANIFEST.format(concurrency=concurrency))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (root / "platform.log").open("wb")
        args = [sys.executable, "-m", "ondo", "--data-dir", str(root / "data"), "up"]
        args += ["--port", str(self.port), "--app", str(app)]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "ONDO_ACTION_DESTINATIONS": destinations,
            **backend.env(),
        }
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=self.log, env=env, cwd=REPO, start_new_session=True
        )

    def wait_healthy(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ondo up exited: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return (self.root / "data" / "admin.token").read_text().strip()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"ondo up did not become healthy: {self.tail()}")

    def tail(self) -> str:
        return (self.root / "platform.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


# --- a lean HTTP/1.1 client ---------------------------------------------------------------


class LeanClient:
    """Keep-alive HTTP/1.1 over a few raw asyncio connections.

    The paced runs post one event per request; httpx costs ~1 ms of CPU per request, which on a
    2-core machine competes with the platform being measured. This client costs a fraction.
    """

    def __init__(self, url: str, token: str, connections: int = 16) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.token = host, int(port), token
        self.size = connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._opened = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle.empty() and self._opened < self.size:
            self._opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self._idle.get()

    async def post(self, path: str, body: Any) -> int:
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        for _ in range(3):  # the server closes keep-alive connections idle for 5 s
            reader, writer = await self._connection()
            writer.write(head.encode() + data)
            status_line = await reader.readline()
            if status_line:
                break
            writer.close()
            self._opened -= 1
            await self.close()  # the other idle connections timed out alike
        else:
            raise RuntimeError(f"POST {path}: the server closed every connection")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self._idle.put_nowait((reader, writer))
        status = int(status_line.split()[1])
        if status >= 400:
            raise RuntimeError(f"POST {path} answered {status}")
        return status

    async def close(self) -> None:
        while not self._idle.empty():
            _reader, writer = self._idle.get_nowait()
            writer.close()
            self._opened -= 1


# --- driving load -------------------------------------------------------------------------


def hit(n: int, run: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{run}-{n}",
        "source": "bench/rules",
        "type": "bench.hit",
        "data": {"n": f"{run}-{n}"},
    }


async def post_rule_one(client: LeanClient, run: str, n: int) -> None:
    await client.post("/v1/events", hit(n, run))


async def post_direct_one(client: LeanClient, run: str, n: int) -> None:
    await client.post("/v1/functions/echo/invoke?mode=async", {"n": f"{run}-{n}"})


async def post_direct_batch(client: LeanClient, run: str, numbers: range) -> None:
    await asyncio.gather(*(post_direct_one(client, run, n) for n in numbers))


async def post_rule_batch_lean(client: LeanClient, run: str, numbers: range) -> None:
    await client.post("/v1/events", [hit(n, run) for n in numbers])


# Invocation records are committed in batches, so one that finished earlier can become visible
# after a later one (on PostgreSQL, concurrent transactions commit in any order): a reader that
# only moves forward by finished_at would skip it. Each idle poll re-reads this much history.
REREAD_S = 2.0


async def completions(
    client: httpx.AsyncClient, run: str, expected: int, timeout: float
) -> dict[str, list[float]]:
    """finished_at of every succeeded invocation whose result id belongs to `run` (a list per
    id: more than one entry is an effect that happened twice)."""
    seen: dict[str, list[float]] = {}
    counted: set[str] = set()  # invocation ids, so re-read records count once
    after = newest = 0.0
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        response = await client.get(
            "/v1/functions/echo/logs", params={"after": after, "limit": 1000}
        )
        response.raise_for_status()
        records = response.json()["invocations"]
        for record in records:
            newest = max(newest, record["finished_at"] or newest)
            result = record.get("result") or {}
            rid = result.get("id") if isinstance(result, dict) else None
            if record["status"] != "succeeded" or not isinstance(rid, str):
                continue
            if rid.startswith(run) and record["id"] not in counted:
                counted.add(record["id"])
                seen.setdefault(rid, []).append(record["finished_at"])
        if len(records) < 1000:
            after = max(0.0, newest - REREAD_S)
            # Completion times come from the records, so polling slowly loses no accuracy;
            # it keeps the platform's `logs` query (a scan of the function's invocations)
            # from taking CPU away from the run being measured.
            await asyncio.sleep(0.5)
        else:
            after = newest
    return seen


async def saturate(
    client: httpx.AsyncClient,
    lean: LeanClient,
    run: str,
    total: int,
    post_batch: Callable[[LeanClient, str, range], Awaitable[None]],
) -> dict[str, Any]:
    batch, in_flight = 100, 4
    started = time.time()
    gate = asyncio.Semaphore(in_flight)

    async def one(start: int) -> None:
        async with gate:
            await post_batch(lean, run, range(start, min(start + batch, total)))

    await asyncio.gather(*(one(s) for s in range(0, total, batch)))
    posted = time.time()
    done = await completions(client, run, total, timeout=max(60.0, total / 100))
    last = max((max(v) for v in done.values()), default=posted)
    doubled = sum(1 for v in done.values() if len(v) > 1)
    elapsed = last - started
    return {
        "events": total,
        "completed": len(done),
        "lost": total - len(done),
        "doubled": doubled,
        "post_s": round(posted - started, 3),
        "total_s": round(elapsed, 3),
        "events_per_s": round(len(done) / elapsed, 1) if elapsed > 0 else None,
    }


async def paced(
    client: httpx.AsyncClient,
    lean: LeanClient,
    run: str,
    rate: int,
    seconds: float,
    post_one: Callable[[LeanClient, str, int], Awaitable[None]],
) -> dict[str, Any]:
    total = int(rate * seconds)
    first_post = time.time()
    sent_at: dict[str, float] = {}
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    for n in range(total):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[f"{run}-{n}"] = time.time()
        tasks.append(asyncio.create_task(post_one(lean, run, n)))
    await asyncio.gather(*tasks)
    achieved = total / (time.monotonic() - start)
    last_post = time.time()
    done = await completions(client, run, total, timeout=max(60.0, seconds))
    latencies = sorted((min(v) - sent_at[k]) * 1000 for k, v in done.items() if k in sent_at)
    last_done = max((min(v) for v in done.values()), default=last_post)
    return {
        "rate_target": rate,
        "rate_achieved": round(achieved, 1),
        "events": total,
        "completed": len(done),
        "lost": total - len(done),
        "doubled": sum(1 for v in done.values() if len(v) > 1),
        # from the first post to the last completion: what the whole pipeline kept up with
        "end_to_end_events_per_s": round(len(done) / (last_done - first_post), 1),
        "last_completion_after_last_post_s": round(last_done - last_post, 3),
        **percentiles(latencies),
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {
        "p50_ms": round(statistics.median(values), 2),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(values[-1], 2),
    }


# --- where the time goes (unloaded) --------------------------------------------------------

STAGES = (
    ("http_to_bus", "posted", "received"),
    ("bus_to_decision", "received", "decided"),
    ("decision_to_job", "decided", "job_created"),
    ("job_to_invocation", "job_created", "invocation_created"),
    ("invocation", "invocation_created", "invocation_finished"),
    ("finish_to_job_done", "invocation_finished", "job_done"),
)


async def stages(client: httpx.AsyncClient, lean: LeanClient, count: int) -> dict[str, Any]:
    """Events one at a time (20/s): the median time of each hop, from the stored timestamps."""
    sent: dict[str, float] = {}
    for n in range(count):
        sent[f"st-{n}"] = time.time()
        await post_rule_one(lean, "st", n)
        await asyncio.sleep(0.05)
    await completions(client, "st", count, timeout=60.0)
    await asyncio.sleep(0.2)  # the jobs' last write follows the invocation's
    spans: dict[str, list[float]] = {name: [] for name, _, _ in STAGES}
    total: list[float] = []
    for event_id, posted in sent.items():
        times = await _stage_times(client, event_id, posted)
        if times is None:
            continue
        for name, start, end in STAGES:
            spans[name].append((times[end] - times[start]) * 1000)
        total.append((times["invocation_finished"] - posted) * 1000)
    out: dict[str, Any] = {
        name: round(statistics.median(v), 2) if v else None for name, v in spans.items()
    }
    out["post_to_completion_p50_ms"] = round(statistics.median(total), 2) if total else None
    out["events"] = len(total)
    return out


async def _stage_times(
    client: httpx.AsyncClient, event_id: str, posted: float
) -> dict[str, float] | None:
    trace = (await client.get(f"/v1/trace/{event_id}")).json()
    try:
        decision = trace["decisions"][0]
        job = decision["jobs"][0]
        invocation_id = job["invocation_ids"][0]
    except (KeyError, IndexError):
        return None
    record = (await client.get(f"/v1/invocations/{invocation_id}")).json()
    return {
        "posted": posted,
        "received": trace["events"][0]["received_at"],
        "decided": decision["at"],
        "job_created": job["created_at"],
        "invocation_created": record["created_at"],
        "invocation_finished": record["finished_at"],
        "job_done": job["finished_at"] or record["finished_at"],
    }


# --- condition cost -----------------------------------------------------------------------


def condition_cost(rounds: int) -> dict[str, Any]:
    """One evaluation: EventBridge pattern (compiled) vs CEL, the same test on the same event."""
    event = {
        "specversion": "1.0",
        "id": "1",
        "source": "shop/orders",
        "type": "order.placed",
        "data": {"total": 120, "country": "DE", "items": 3},
    }
    pattern = compile_pattern(
        {"type": ["order.placed"], "data": {"total": [{"numeric": [">", 100]}], "country": ["DE"]}}
    )
    cel = Condition('event.type == "order.placed" && data.total > 100 && data.country == "DE"')
    assert pattern.matches(event) and cel.evaluate(event)

    def per_call(fn: Callable[[], bool], n: int) -> float:
        begin = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - begin) / n * 1e6

    pattern_us = min(per_call(lambda: pattern.matches(event), rounds) for _ in range(3))
    cel_us = min(per_call(lambda: cel.evaluate(event), max(1, rounds // 20)) for _ in range(3))
    return {
        "pattern_us": round(pattern_us, 3),
        "cel_us": round(cel_us, 3),
        "cel_over_pattern": round(cel_us / pattern_us, 1),
    }


# --- the action queue alone ----------------------------------------------------------------


class NoopKind:
    """An action kind that does nothing: what is left is the queue's own cost per job."""

    kind = "bench-noop"
    destinations = False

    def validate(self, action: Any, namespace: str) -> None:
        return None

    async def perform(self, request: Any, attempt: int) -> Any:
        from ondo.actions.base import ActionResult

        return ActionResult(ok=True)


async def queue_only(total: int, per_enqueue: int) -> dict[str, Any]:
    """Jobs/s through enqueue -> claim -> perform (no-op) -> succeeded, on a real SQLite file."""
    from ondo.actions.base import ActionRequest
    from ondo.actions.model import Action
    from ondo.actions.queue import ActionQueue
    from ondo.config import Config
    from ondo.platform import Platform as OndoPlatform

    with tempfile.TemporaryDirectory(prefix="ondo-bench-queue-") as tmp:
        platform = OndoPlatform(Config(data_dir=Path(tmp)))
        queue: ActionQueue = platform.actions
        queue.kinds.add(NoopKind())
        await queue.start()
        action = Action(kind="bench-noop", target="x")
        event = {"specversion": "1.0", "id": "e", "source": "bench", "type": "t"}
        started = time.perf_counter()
        for start in range(0, total, per_enqueue):
            batch = [
                ActionRequest(f"k{n}", "default", "r", 0, action, event, f"enf{n}")
                for n in range(start, start + per_enqueue)
            ]
            async with platform.store.transaction() as uow:  # as the rules engine does
                await queue.enqueue_in(uow, batch)
            await asyncio.sleep(0)
        while (await queue.counts())["succeeded"] < total:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        await queue.stop()
        await platform.bus.close()
        await platform.store.close()
    return {
        "jobs": total,
        "per_enqueue": per_enqueue,
        "jobs_per_s": round(total / elapsed),
        "us_per_job": round(elapsed / total * 1e6, 1),
    }


# --- the run ------------------------------------------------------------------------------


async def measure(url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    total = args.events or (1000 if args.quick else 5000)
    seconds = 2.0 if args.quick else 5.0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60.0, limits=limits
    ) as client:
        lean = LeanClient(url, token)
        await paced(client, lean, "warm", 50, 1.0, post_rule_one)  # warm workers and caches
        await paced(client, lean, "warmd", 50, 1.0, post_direct_one)
        unloaded = await stages(client, lean, 40)
        rule_sat = await saturate(client, lean, "rs", total, post_rule_batch_lean)
        direct_sat = await saturate(client, lean, "ds", total, post_direct_batch)
        rule_paced = await paced(client, lean, "rp", PACED_RATE, seconds, post_rule_one)
        direct_paced = await paced(client, lean, "dp", PACED_RATE, seconds, post_direct_one)
        sustained = None
        if args.sustain:
            rate, duration = args.sustain, args.sustain_seconds
            sustained = await paced(client, lean, "su", rate, duration, post_rule_one)
        actions = (await client.get("/v1/actions")).json()["jobs"]
        await lean.close()
    return {
        "unloaded_stages_ms": unloaded,
        "saturation": {"rule": rule_sat, "direct": direct_sat},
        "paced": {"rule": rule_paced, "direct": direct_paced},
        **({"sustained": sustained} if sustained else {}),
        "action_jobs": actions,
    }


def verdict(result: dict[str, Any], distributed: bool = False) -> dict[str, Any]:
    sat = result["saturation"]["rule"]
    pace = result["paced"]["rule"]
    rate = sat["events_per_s"] or 0.0
    p99 = pace["p99_ms"]
    direct_rate = result["saturation"]["direct"]["events_per_s"] or 0.0
    direct_p99 = result["paced"]["direct"]["p99_ms"]
    target = TARGET_DISTRIBUTED_EVENTS_PER_S if distributed else TARGET_EVENTS_PER_S
    return {
        "events_per_s_target": target,
        "events_per_s_met": rate >= target and sat["lost"] == 0,
        "nothing_lost_or_doubled": sat["lost"] == sat["doubled"] == 0 and pace["lost"] == 0,
        "p99_ms_target": TARGET_P99_MS,
        "p99_met": p99 is not None and p99 <= TARGET_P99_MS,
        "rule_over_direct_throughput": round(rate / direct_rate, 2) if direct_rate else None,
        "rule_minus_direct_p50_ms": (
            round(pace["p50_ms"] - result["paced"]["direct"]["p50_ms"], 2)
            if pace["p50_ms"] is not None and result["paced"]["direct"]["p50_ms"] is not None
            else None
        ),
        "rule_over_direct_p99": round(p99 / direct_p99, 2) if p99 and direct_p99 else None,
        **sustained_verdict(result.get("sustained"), target),
    }


def sustained_verdict(sustained: dict[str, Any] | None, target: int) -> dict[str, Any]:
    """Met when every event of the paced run (posted at >= the target) completed once, and the
    pipeline kept up end to end: within 2% of the target, which the first event's and the last
    event's own latency take from a run that kept pace (1,000/s for 60 s ends at ~999/s)."""
    if not sustained:
        return {}
    kept_up = sustained["end_to_end_events_per_s"] >= 0.98 * target
    posted = sustained["rate_target"] >= target
    lost_or_doubled = sustained["lost"] + sustained["doubled"]
    return {"sustained_met": posted and kept_up and lost_or_doubled == 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI smoke)")
    parser.add_argument("--concurrency", type=int, default=16, help="the function's concurrency")
    parser.add_argument("--keep", action="store_true", help="keep the data dir for inspection")
    parser.add_argument(
        "--destinations",
        choices=("all", "failed", "none"),
        default="all",
        help="ONDO_ACTION_DESTINATIONS for the platform (default: all, the platform default)",
    )
    parser.add_argument("--events", type=int, default=0, help="events of the saturation runs")
    parser.add_argument(
        "--sustain",
        type=int,
        default=0,
        metavar="RATE",
        help="also post rule events one per request at RATE/s for --sustain-seconds",
    )
    parser.add_argument("--sustain-seconds", type=float, default=60.0)
    add_arguments(parser)
    args = parser.parse_args()
    backends = chosen(args)
    load_before = os.getloadavg()  # other work on the machine skews every figure below
    measured = {config.name: measure_on(config, args) for config in backends}
    out: dict[str, Any] = {
        "bench": "rules",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "function_concurrency": args.concurrency,
        "destinations": args.destinations,
    }
    if len(measured) == 1:
        out.update(next(iter(measured.values())))
    else:
        out["configs"] = measured
    out["condition"] = condition_cost(20_000 if args.quick else 100_000)
    out["queue_only"] = [
        asyncio.run(queue_only(2000 if args.quick else 10_000, per)) for per in (1, 50)
    ]
    print(json.dumps(out, indent=2))
    return 0


def measure_on(config: BackendConfig, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration on a fresh platform: its figures and its verdict."""
    root = Path(tempfile.mkdtemp(prefix="ondo-bench-rules-"))
    platform = Platform(root, args.concurrency, args.destinations, config)
    try:
        token = platform.wait_healthy()
        result = asyncio.run(measure(platform.url, token, args))
    finally:
        platform.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            config.drop()
    result = {"backend": {"name": config.name, **config.describe()}, **result}
    result["verdict"] = verdict(result, distributed=config.name != "embedded")
    return result


if __name__ == "__main__":
    sys.exit(main())
