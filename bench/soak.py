"""Benchmark "soak": disk use and memory stay flat under steady load once retention applies.

Run:  .venv/bin/python bench/soak.py [--rate 300] [--duration 150] [--retention 30s]

Starts `ondo up` (the embedded default: SQLite bus and store, local sandboxes) with short
retentions (events, records and jobs: `--retention`, 30 s by default; retention sweeps every 2 s;
WALs bounded at `--wal-limit-mb`; the bus remembers ids for duplicates as long as it keeps
events, instead of its usual 24 h) and one function and rule (`on soak.hit do invoke echo`). It
posts `--rate` events/s for `--duration` seconds, `--fire` of them (30%) of the type the rule
fires on, the rest of a type no rule looks at, in batches of 10 (one request each).

Every `--sample` seconds it records the data dir's size on disk (every file, -wal and -shm
included; the databases alone; the WALs alone) and the resident memory of the `ondo up` process
(and of its whole process tree, sandboxes included).

Retention applies once the first events are older than the retention (plus one sweep). The
samples after that are split in two halves; a least-squares slope (MB per minute) is fitted to
each, and compared with the growth before retention applied. Flat means the second half grows
by less than 10% of that rate (SQLite reuses the pages that retention frees, so the files stop
growing instead of shrinking). The JSON printed says whether each was met; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from rules import REPO, LeanClient, free_port  # noqa: E402

from ondo.config import retention_duration  # noqa: E402

ECHO = """
def handler(event, context):
    return {"n": (event.get("data") or {}).get("n") if isinstance(event, dict) else None}
"""

MANIFEST = """
name: soak
functions:
  echo:
    code: ./echo
    handler: app.handler
    timeout: 10
    concurrency: 8
rules:
  - name: soak
    when: on soak.hit do invoke echo
"""
BATCH = 10
FLAT_RATIO = 0.10  # the second half grows by less than this share of the growth before retention
MB = 1024 * 1024


class Platform:
    """`ondo up` in a subprocess with its own data dir; stopped with its process tree."""

    def __init__(self, root: Path, retention: str, wal_limit_mb: int) -> None:
        dedup_s = retention_duration(retention, "--retention")
        self.root, self.data = root, root / "data"
        app = root / "app"
        (app / "echo").mkdir(parents=True)
        (app / "echo" / "app.py").write_text(ECHO)
        (app / "ondo.yaml").write_text(MANIFEST)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (root / "platform.log").open("wb")
        args = [sys.executable, "-m", "ondo", "--data-dir", str(self.data), "up"]
        args += ["--port", str(self.port), "--app", str(app)]
        for kind in ("events", "records", "jobs"):
            args += ["--retention", f"{kind}={retention}"]
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "ONDO_RETENTION_EVERY": "2s",
            "ONDO_WAL_LIMIT_MB": str(wal_limit_mb),
            "ONDO_BUS": f"sqlite:///{self.data / 'bus.db'}?dedup_window={dedup_s:g}",
            "ONDO_ACTION_DESTINATIONS": "none",
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
                    return (self.data / "admin.token").read_text().strip()
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
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


# --- what is measured ---------------------------------------------------------------------


def disk_use(data: Path) -> dict[str, int]:
    """Bytes on disk under the data dir: everything, the SQLite files, their WALs."""
    total = databases = wals = 0
    for path in data.rglob("*"):
        try:
            if not path.is_file() or path.is_symlink():
                continue
            size = path.stat().st_blocks * 512
        except OSError:  # a file deleted while we walk
            continue
        total += size
        if path.name.endswith(".db"):
            databases += size
        elif path.name.endswith("-wal"):
            wals += size
    return {"total": total, "databases": databases, "wals": wals}


def rss(pid: int) -> int:
    """Resident memory of one process, in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    """Resident memory of the process and its descendants (zygotes, workers), in bytes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss(current)
        todo.extend(children.get(current, []))
    return total


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, bytes) points, in MB per minute."""
    if len(points) < 3:
        return None
    times, values = [t for t, _ in points], [v for _, v in points]
    return round(statistics.linear_regression(times, values).slope * 60 / MB, 3)


# --- driving load -------------------------------------------------------------------------


def event(n: int, fire: float) -> dict[str, Any]:
    hit = (n * 37 % 100) < fire * 100  # spread evenly, the same every run
    return {
        "specversion": "1.0",
        "id": f"soak-{n}",
        "source": "bench/soak",
        "type": "soak.hit" if hit else "soak.miss",
        "subject": f"s{n % 1000}",
        "data": {"n": n, "pad": "x" * 200},
    }


async def post(lean: LeanClient, rate: int, seconds: float, fire: float) -> dict[str, Any]:
    """`rate` events/s in batches of BATCH for `seconds`; returns what was achieved."""
    batches, failed = int(rate * seconds / BATCH), 0
    started, tasks = time.monotonic(), []

    async def one(b: int) -> None:
        nonlocal failed
        try:
            await lean.post("/v1/events", [event(b * BATCH + i, fire) for i in range(BATCH)])
        except (RuntimeError, OSError):
            failed += 1

    for b in range(batches):
        delay = started + b * BATCH / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(b)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    return {
        "events": batches * BATCH,
        "failed_batches": failed,
        "rate_achieved": round(batches * BATCH / elapsed, 1),
    }


async def sample(platform: Platform, every: float, samples: list[dict[str, Any]]) -> None:
    started = time.monotonic()
    while True:
        samples.append(
            {
                "t": round(time.monotonic() - started, 2),
                **{f"disk_{k}": v for k, v in disk_use(platform.data).items()},
                "rss": rss(platform.proc.pid),
                "tree_rss": tree_rss(platform.proc.pid),
            }
        )
        await asyncio.sleep(every)


async def pruned(client: httpx.AsyncClient) -> dict[str, float]:
    """ondo_retention_pruned_rows_total per kind, from /metrics."""
    text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ondo_retention_pruned_rows_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            out[kind] = float(line.rsplit(" ", 1)[1])
    return out


def analyse(samples: list[dict[str, Any]], applies_at: float) -> dict[str, Any]:
    before = [s for s in samples if s["t"] <= applies_at]
    after = [s for s in samples if s["t"] > applies_at]
    half = len(after) // 2
    first, second = after[:half], after[half:]
    out: dict[str, Any] = {"retention_applies_at_s": applies_at, "samples_after": len(after)}
    for key in ("disk_total", "disk_databases", "disk_wals", "rss", "tree_rss"):
        growth = slope_mb_per_min([(s["t"], s[key]) for s in before])
        one = slope_mb_per_min([(s["t"], s[key]) for s in first])
        two = slope_mb_per_min([(s["t"], s[key]) for s in second])
        values = [s[key] for s in after] or [0]
        out[key] = {
            "before_retention_mb_per_min": growth,
            "first_half_mb_per_min": one,
            "second_half_mb_per_min": two,
            "after_min_mb": round(min(values) / MB, 1),
            "after_max_mb": round(max(values) / MB, 1),
            "last_mb": round(values[-1] / MB, 1),
        }
        if key in ("disk_total", "rss") and growth and two is not None:
            out[key]["flat"] = two < FLAT_RATIO * growth
    return out


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    retention_s = retention_duration(args.retention, "--retention")
    platform = Platform(root, args.retention, args.wal_limit_mb)
    try:
        token = platform.wait_healthy()
        lean = LeanClient(platform.url, token, connections=8)
        headers = {"Authorization": f"Bearer {token}"}
        samples: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=platform.url, headers=headers) as client:
            sampler = asyncio.create_task(sample(platform, args.sample, samples))
            posted = await post(lean, args.rate, args.duration, args.fire)
            sampler.cancel()
            deleted = await pruned(client)
        await lean.close()
    finally:
        platform.close()
    # Retention deletes rows once they are older than the retention, at the next sweep (2 s);
    # a margin of one sweep and one sample more.
    applies_at = retention_s + 2.0 + args.sample
    return {
        "bench": "soak",
        "config": {
            "rate": args.rate,
            "duration_s": args.duration,
            "fire": args.fire,
            "retention": args.retention,
            "wal_limit_mb": args.wal_limit_mb,
            "sample_s": args.sample,
        },
        "posted": posted,
        "pruned_rows": deleted,
        "analysis": analyse(samples, applies_at),
        "samples": samples if args.samples else len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=300, help="events per second")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load")
    parser.add_argument("--fire", type=float, default=0.3, help="share of events a rule fires on")
    parser.add_argument("--retention", default="30s", help="of events, records and jobs")
    parser.add_argument("--wal-limit-mb", type=int, default=8, help="ONDO_WAL_LIMIT_MB")
    parser.add_argument("--sample", type=float, default=3.0, help="seconds between samples")
    parser.add_argument("--samples", action="store_true", help="print every sample too")
    parser.add_argument("--keep", action="store_true", help="keep the data dir for inspection")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ondo-soak-"))
    try:
        out = asyncio.run(run(args, root))
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
