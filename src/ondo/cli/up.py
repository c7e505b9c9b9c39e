"""`ondo up` and `ondo status`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ondo.cli.common import client_of, show
from ondo.config import from_environment


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up", help="run the platform (API, dispatcher, worker pool) in the foreground"
    )
    up.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="port to listen on (default 8080)")
    up.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="DIR",
        help="deploy DIR/ondo.yaml at start (repeatable)",
    )
    up.set_defaults(func=run_up)
    status = sub.add_parser("status", help="show the runtime pool and the sandbox layers in force")
    status.set_defaults(func=run_status)


def run_up(args: argparse.Namespace) -> int:
    from ondo.server import serve

    config = from_environment().with_overrides(
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None,
        host=args.host,
        port=args.port,
        apps=tuple(Path(a).resolve() for a in args.app) or None,
    )
    return serve(config)


def run_status(args: argparse.Namespace) -> int:
    data = client_of(args).get("/v1/status")
    runtime = data.get("runtime", {})
    print(f"ondo {data['version']}  data: {data['data_dir']}  clock: {data['clock']}")
    layers = runtime.get("sandbox", runtime.get("layers", {}))
    if layers:
        print("sandbox layers:")
        for name, info in layers.items():
            state = info.get("active") if isinstance(info, dict) else info
            why = info.get("reason", "") if isinstance(info, dict) else ""
            print(f"  {name:<12} {'active' if state else 'UNAVAILABLE'}  {why}")
    show(runtime)
    return 0
