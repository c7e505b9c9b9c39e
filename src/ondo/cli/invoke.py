"""`ondo invoke NAME [--data JSON|@FILE] [--async]`, `ondo logs NAME`, `ondo invocation ID`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ondo.cli.common import add_json_flag, client_of, read_data, result_of
from ondo.cli.output import document, local_time, print_json

FOLLOW_POLL_S = 0.5
FOLLOW_PAGE = 1000  # the API's largest page of `logs?after=`
FOLLOW_LOOKBACK_S = 2.0  # how late a record may commit after one that finished later


def register(sub: Any) -> None:
    inv = sub.add_parser("invoke", help="invoke a function and print its result as JSON")
    inv.add_argument("name", help="the function's name (see `ondo functions list`)")
    inv.add_argument("--data", help="the event: JSON text, @FILE or @- for stdin (default {})")
    inv.add_argument(
        "--async",
        dest="is_async",
        action="store_true",
        help="queue the invocation and print its id at once",
    )
    inv.add_argument(
        "--version", type=int, metavar="N", help="invoke version N instead of the current one"
    )
    inv.set_defaults(func=run_invoke)
    logs = sub.add_parser("logs", help="show a function's recent invocations and their output")
    logs.add_argument("name", help="the function's name (see `ondo functions list`)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new invocations")
    logs.add_argument(
        "--limit", type=int, default=20, help="how many past invocations to show (default 20)"
    )
    add_json_flag(logs, "one invocation record per line (JSON Lines), oldest first")
    logs.set_defaults(func=run_logs)
    inv_show = sub.add_parser("invocation", help="show one invocation record")
    inv_show.add_argument(
        "id", help="the invocation id (from `ondo invoke --async` or `ondo logs`)"
    )
    add_json_flag(inv_show, "{id, function, version, status, created_at, finished_at, result, …}")
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
    result_of(response.json())
    error = response.headers.get("X-Ondo-Function-Error")
    if error:
        print(
            f"function error ({error}); see `ondo invocation"
            f" {response.headers.get('X-Ondo-Invocation-Id')}`",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_record(rec: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(rec, lines=True)
        return
    cold = " cold" if rec["cold"] else ""
    print(
        f"--- {local_time(rec.get('finished_at') or rec['created_at'])} {rec['id']}"
        f" v{rec['version']} {rec['status']} {rec['duration_ms']:.1f} ms{cold}"
    )
    if rec["logs"]:
        print(rec["logs"].rstrip("\n"))
    if rec["error"]:
        print(f"{rec['error'].get('errorType')}: {rec['error'].get('errorMessage')}")
    sys.stdout.flush()


def run_logs(args: argparse.Namespace) -> int:
    client = client_of(args)
    records = client.get(f"/v1/functions/{args.name}/invocations", limit=args.limit)["invocations"]
    records.reverse()
    for rec in records:
        _print_record(rec, args.json)
    if args.follow:
        _follow(client, args, records)
    return 0


def _follow(client: Any, args: argparse.Namespace, shown: list[dict[str, Any]]) -> None:
    """Print each finished invocation once, as it appears. Records are committed in batches,
    not always in finishing order (on PostgreSQL several commit at once), so each poll reads
    again the last FOLLOW_LOOKBACK_S before the newest finish seen and skips what it printed."""
    newest = max((r.get("finished_at") or 0.0 for r in shown), default=0.0)
    printed = {r["id"]: r.get("finished_at") or 0.0 for r in shown}
    after = newest - FOLLOW_LOOKBACK_S
    while True:
        time.sleep(FOLLOW_POLL_S)
        page = client.get(f"/v1/functions/{args.name}/logs", after=after, limit=FOLLOW_PAGE)[
            "invocations"
        ]
        for rec in page:
            if rec["id"] not in printed:
                _print_record(rec, args.json)
                printed[rec["id"]] = rec["finished_at"] or 0.0
            newest = max(newest, rec["finished_at"] or 0.0)
        if len(page) == FOLLOW_PAGE:  # more to read: go on from this page's end (ids dedupe)
            after = (page[-1]["finished_at"] or after) - 1e-6
        else:  # caught up: next time, look back for records committed late
            after = newest - FOLLOW_LOOKBACK_S
        printed = {i: t for i, t in printed.items() if t >= after}  # bounded memory


def run_invocation(args: argparse.Namespace) -> int:
    record = client_of(args).get(f"/v1/invocations/{args.id}")
    if args.json:
        print_json(record)
        return 0
    document(record, skip=["logs"])
    if record.get("logs"):
        print("logs:")
        print(record["logs"].rstrip("\n"))
    return 0
