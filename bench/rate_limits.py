"""What the request rate limits cost: two `ondo up` on the same app, one with the default limits
and one with every limit off (`ONDO_RATE_LIMIT_*=0`), measured in alternating rounds (the order
swapped each round) so that load drifting on a shared machine hits both alike.

Each round runs bench/http_routes.py's measurement on each platform: the direct sync invoke (the
invoke fast path, the principal's bucket), a token route and a public route of an http source
(the source's bucket), at concurrency 1 (p50) and 16 clients each (requests/s). Prints one JSON
document with both sides' medians over the rounds and the ratios on/off.
Run: `.venv/bin/python bench/rate_limits.py [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from http_routes import CLIENTS, HANDLER, MANIFEST, alternate, wait_connected
from invoke import free_port, start_server, stop

OFF = {f"ONDO_RATE_LIMIT_{kind}": "0" for kind in ("PRINCIPAL", "ANONYMOUS", "SOURCE")}
PATHS = {
    "direct_invoke": "/v1/functions/bench/invoke",
    "token_route": "/http/default/bench/call",
    "public_route": "/http/default/bench/public/7",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    rounds, count, seconds = (4, 200, 2.0) if args.quick else (8, 400, 3.0)
    with tempfile.TemporaryDirectory(prefix="ondo-bench-rates-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        (work / "app" / "bench").mkdir(parents=True)
        (work / "app" / "bench" / "app.py").write_text(HANDLER)
        (work / "app" / "ondo.yaml").write_text(textwrap.dedent(MANIFEST))
        servers = {name: _start(work, name, env) for name, env in (("on", {}), ("off", OFF))}
        try:
            results: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
            for n in range(rounds):
                order = ("on", "off") if n % 2 == 0 else ("off", "on")
                for name in order:
                    _, port, token = servers[name]
                    figures = asyncio.run(alternate(PATHS, port, token, 1, count, seconds))
                    results[name].append(figures)
        finally:
            for process, _, _ in servers.values():
                stop(process)
    print(json.dumps(_report(results, rounds), indent=2))


def _start(work: Path, name: str, env: dict[str, str]) -> tuple[Any, int, str]:
    data_dir, port = work / f"data-{name}", free_port()
    command = [sys.executable, "-m", "ondo", "--data-dir", str(data_dir), "up"]
    command += ["--port", str(port), "--app", str(work / "app")]
    process = start_server(command, port, work / f"ondo-{name}.log", env)
    token = (data_dir / "admin.token").read_text().strip()
    wait_connected(port, token)
    return process, port, token


def _report(results: dict[str, list[dict[str, Any]]], rounds: int) -> dict[str, Any]:
    key = f"concurrency_{CLIENTS}_per_s"
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}}
    out["rounds"] = rounds
    for path in PATHS:
        side = {}
        for name, runs in results.items():
            side[name] = {
                "p50_ms": round(
                    statistics.median(r[path]["concurrency_1_ms"]["p50"] for r in runs), 4
                ),
                "per_s": round(statistics.median(r[path][key] for r in runs), 1),
            }
        side["p50_on_over_off"] = round(side["on"]["p50_ms"] / side["off"]["p50_ms"], 3)
        side["per_s_on_over_off"] = round(side["on"]["per_s"] / side["off"]["per_s"], 3)
        out[path] = side
    return out


if __name__ == "__main__":
    main()
