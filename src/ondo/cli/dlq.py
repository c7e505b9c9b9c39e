"""`ondo dlq list|show|retry|delete`: the actions that failed their last attempt."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ondo.cli.common import client_of, show
from ondo.errors import ValidationError


def register(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead-lettered actions: list, show, retry, delete")
    dsub = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = dsub.add_parser("list", help="list dead-lettered actions, oldest first")
    lst.add_argument("--limit", type=int, default=100)
    lst.add_argument("--json", action="store_true", help="print the raw JSON")
    lst.set_defaults(func=run_list)
    shw = dsub.add_parser("show", help="show one action job with its request and last error")
    shw.add_argument("id")
    shw.set_defaults(func=run_show)
    rty = dsub.add_parser("retry", help="queue dead-lettered actions again, attempts reset")
    rty.add_argument("id", nargs="?", help="the job id (from `ondo dlq list`)")
    rty.add_argument("--all", action="store_true", help="retry every dead-lettered action")
    rty.set_defaults(func=run_retry)
    dele = dsub.add_parser("delete", help="drop a dead-lettered action for good")
    dele.add_argument("id")
    dele.set_defaults(func=run_delete)


def run_list(args: argparse.Namespace) -> int:
    jobs = client_of(args).get("/v1/dlq", limit=args.limit)["dead_letters"]
    if args.json:
        show(jobs)
        return 0
    if not jobs:
        print("no dead-lettered actions")
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["updated_at"]))
        print(
            f"{job['id']:<6} {when}  rule {job['rule']}  action #{job['action_index']}"
            f" {job['kind']}  attempts {job['attempts']}  error: {_error_text(job['last_error'])}"
        )
    return 0


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("error", error))
    return str(error)


def run_show(args: argparse.Namespace) -> int:
    show(client_of(args).get(f"/v1/dlq/{args.id}"))
    return 0


def run_retry(args: argparse.Namespace) -> int:
    if args.all == (args.id is not None):
        raise ValidationError("give either a job id or --all: `ondo dlq retry ID|--all`")
    client = client_of(args)
    path = "/v1/dlq/retry" if args.all else f"/v1/dlq/{args.id}/retry"
    retried = client.post(path)["retried"]
    print(f"queued again: {len(retried)} action(s)" + (f" ({_ids(retried)})" if retried else ""))
    return 0


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20])
    return shown + (", …" if len(ids) > 20 else "")


def run_delete(args: argparse.Namespace) -> int:
    client_of(args).delete(f"/v1/dlq/{args.id}")
    print(f"deleted dead-lettered action {args.id}")
    return 0
