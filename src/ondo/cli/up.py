"""`ondo up` and `ondo status`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import fields, print_json, table
from ondo.config import check_cluster, from_environment, rate_overrides, retention_overrides


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up", help="run the platform (API, dispatcher, worker pool) in the foreground"
    )
    up.add_argument(
        "--host", default=None, help="address to listen on (default: $ONDO_HOST or 127.0.0.1)"
    )
    up.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: $ONDO_PORT or 8080)"
    )
    up.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="DIR",
        help="deploy DIR/ondo.yaml at start (repeatable)",
    )
    up.add_argument(
        "--bus",
        default=None,
        metavar="URL",
        help="event log: sqlite:///PATH (default: DATA_DIR/bus.db), nats://HOST:PORT, memory:// "
        "(default: $ONDO_BUS)",
    )
    up.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="state: sqlite:///PATH (default: DATA_DIR/ondo.db) or postgresql://USER@HOST/DB "
        "(default: $ONDO_STORE)",
    )
    up.add_argument(
        "--cluster",
        default=None,
        metavar="NAME",
        help="prefix of NATS streams and the PostgreSQL schema, so clusters can share servers "
        "(default: $ONDO_CLUSTER or ondo)",
    )
    up.add_argument(
        "--retention",
        action="append",
        default=[],
        metavar="KIND=DURATION",
        help="how long to keep events (default 7d), records (invocation records and rule "
        "decisions, 30d) or jobs (finished action jobs, 7d); a duration such as 30s, 12h, 7d, "
        "or forever (repeatable; default: $ONDO_RETENTION_EVENTS, …_RECORDS, …_JOBS)",
    )
    up.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="KIND=RATE[:BURST]",
        help="requests a second (and at once; BURST defaults to 2 x RATE) allowed per principal"
        " (default 20000:40000), per address without a valid token (anonymous, 200:2000) and"
        " per http source and address (source, 20000:40000); 0 turns one off; answered 429 with"
        " Retry-After (repeatable; default: $ONDO_RATE_LIMIT_PRINCIPAL, …_ANONYMOUS, …_SOURCE)",
    )
    up.add_argument(
        "--tls-cert",
        default=None,
        metavar="FILE",
        help="serve https with this PEM certificate (chain); needs --tls-key (default:"
        " $ONDO_TLS_CERT)",
    )
    up.add_argument(
        "--tls-key",
        default=None,
        metavar="FILE",
        help="the PEM private key of --tls-cert (default: $ONDO_TLS_KEY)",
    )
    up.set_defaults(func=run_up)
    status = sub.add_parser("status", help="show the runtime pool and the sandbox layers in force")
    add_json_flag(status, '{"version", "data_dir", "clock", "runtime": {sandbox, functions, …}}')
    status.set_defaults(func=run_status)


def run_up(args: argparse.Namespace) -> int:
    from ondo.server import serve

    config = from_environment().with_overrides(
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None,
        host=args.host,
        port=args.port,
        apps=tuple(Path(a).resolve() for a in args.app) or None,
        bus_url=args.bus,
        store_url=args.store,
        cluster=check_cluster(args.cluster, "--cluster") if args.cluster else None,
        tls_cert=Path(args.tls_cert).resolve() if args.tls_cert else None,
        tls_key=Path(args.tls_key).resolve() if args.tls_key else None,
        **retention_overrides(args.retention),
        **rate_overrides(args.rate_limit),
    )
    return serve(config)


def run_status(args: argparse.Namespace) -> int:
    data = client_of(args).get("/v1/status")
    if args.json:
        print_json(data)
        return 0
    runtime = data.get("runtime", {})
    fields([("ondo", data["version"]), ("data dir", data["data_dir"]), ("clock", data["clock"])])
    fields((name.replace("_", " "), value) for name, value in runtime.get("totals", {}).items())
    shown = {"sandbox", "functions", "totals"}
    fields((name.replace("_", " "), v) for name, v in runtime.items() if name not in shown)
    print()
    _layers(runtime.get("sandbox", {}))
    print()
    _pools(runtime.get("functions", {}))
    return 0


def _layers(layers: dict[str, Any]) -> None:
    table(
        [{"name": name, **info} for name, info in layers.items()],
        [
            ("SANDBOX LAYER", lambda layer: layer["name"]),
            ("STATE", lambda layer: "active" if layer.get("active") else "UNAVAILABLE"),
            ("WHY / WHERE", lambda layer: layer.get("reason") or layer.get("path") or ""),
        ],
        empty="no sandbox layers reported",
    )


def _pools(pools: dict[str, Any]) -> None:
    table(
        [{"name": name, **pool} for name, pool in pools.items()],
        [
            ("FUNCTION", lambda p: p["name"]),
            ("WARM", lambda p: p.get("warm")),
            ("SPARE", lambda p: p.get("spare")),
            ("BUSY", lambda p: p.get("busy")),
            ("CONCURRENCY", lambda p: p.get("concurrency")),
            ("INVOCATIONS", lambda p: p.get("invocations")),
            ("COLD STARTS", lambda p: p.get("cold_starts")),
        ],
        empty="no function has run yet",
    )
