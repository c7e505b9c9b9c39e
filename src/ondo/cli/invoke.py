"""`ondo invoke NAME [--data JSON|@FILE] [--async]` and `ondo logs NAME [--follow]`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ondo.cli.common import client_of, read_data, show


def register(sub: Any) -> None:
    inv = sub.add_parser("invoke", help="invoke a function and print its result as JSON")
    inv.add_argument("name")
    inv.add_argument("--data", help="the event: JSON text, @FILE or @- for stdin (default {})")
    inv.add_argument(
        "--async",
        dest="is_async",
        action="store_true",
        help="queue the invocation and print its id at once",
    )
    inv.add_argument("--version", type=int, help="invoke this version instead of the current one")
    inv.set_defaults(func=run_invoke)
    logs = sub.add_parser("logs", help="show a function's recent invocations and their output")
    logs.add_argument("name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new invocations")
    logs.add_argument("--limit", type=int, default=20)
    logs.set_defaults(func=run_logs)
    inv_show = sub.add_parser("invocation", help="show one invocation record")
    inv_show.add_argument("id")
    inv_show.set_defaults(func=run_invocation)


def run_invoke(args: argparse.Namespace) -> int:
    client = client_of(args)
    params = {"mode": "async" if args.is_async else "sync"}
    if args.version:
        params["version"] = str(args.version)
    response = client.request(
        "POST",
        f"/v1/functions/{args.name}/invoke",
        content=read_data(args.data),
        params=params,
        headers={"Content-Type": "application/json"},
    )
    if args.is_async:
        print(response.json()["id"])
        return 0
    show(response.json())
    error = response.headers.get("X-Ondo-Function-Error")
    if error:
        print(
            f"function error ({error}); invocation {response.headers.get('X-Ondo-Invocation-Id')}",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_record(rec: dict[str, Any]) -> None:
    when = time.strftime("%H:%M:%S", time.localtime(rec.get("finished_at") or rec["created_at"]))
    cold = " cold" if rec["cold"] else ""
    print(
        f"--- {when} {rec['id']} v{rec['version']} {rec['status']} "
        f"{rec['duration_ms']:.1f} ms{cold}"
    )
    if rec["logs"]:
        print(rec["logs"].rstrip("\n"))
    if rec["error"]:
        print(f"{rec['error'].get('errorType')}: {rec['error'].get('errorMessage')}")


def run_logs(args: argparse.Namespace) -> int:
    client = client_of(args)
    records = client.get(f"/v1/functions/{args.name}/invocations", limit=args.limit)["invocations"]
    records.reverse()
    for rec in records:
        _print_record(rec)
    after = max((r.get("finished_at") or 0 for r in records), default=0.0)
    while args.follow:
        time.sleep(0.5)
        new = client.get(f"/v1/functions/{args.name}/logs", after=after)["invocations"]
        for rec in new:
            _print_record(rec)
            after = max(after, rec["finished_at"] or after)
    return 0


def run_invocation(args: argparse.Namespace) -> int:
    show(client_of(args).get(f"/v1/invocations/{args.id}"))
    return 0
