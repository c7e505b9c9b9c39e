"""`ondo dlq list|show|retry|delete`: the actions that failed their last attempt."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import document, listing, local_time, one_line, print_json
from ondo.errors import ValidationError

JOB_ID_HELP = "the job id (from `ondo dlq list`)"


def register(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead-lettered actions: list, show, retry, delete")
    dsub = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = dsub.add_parser("list", help="list dead-lettered actions, oldest first")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_json_flag(lst, '{"dead_letters": [{id, rule, kind, attempts, last_error, updated_at, …}]}')
    lst.set_defaults(func=run_list)
    shw = dsub.add_parser("show", help="show one action job with its request and last error")
    shw.add_argument("id", help=JOB_ID_HELP)
    add_json_flag(shw, "{id, rule, status, attempts, last_error, invocation_ids, request, …}")
    shw.set_defaults(func=run_show)
    rty = dsub.add_parser("retry", help="queue dead-lettered actions again, attempts reset")
    rty.add_argument("id", nargs="?", help=JOB_ID_HELP)
    rty.add_argument("--all", action="store_true", help="retry every dead-lettered action")
    rty.set_defaults(func=run_retry)
    dele = dsub.add_parser("delete", help="drop a dead-lettered action for good")
    dele.add_argument("id", help=JOB_ID_HELP)
    dele.set_defaults(func=run_delete)


def run_list(args: argparse.Namespace) -> int:
    jobs = client_of(args).get("/v1/dlq", limit=args.limit)["dead_letters"]
    listing(
        args.json,
        "dead_letters",
        jobs,
        [
            ("ID", lambda j: j["id"]),
            ("FAILED", lambda j: local_time(j["updated_at"])),
            ("RULE", lambda j: j["rule"] or f"({j['event_source']})"),  # async: its function
            ("ACTION", lambda j: f"#{j['action_index']} {j['kind']}"),
            ("ATTEMPTS", lambda j: j["attempts"]),
            ("LAST ERROR", lambda j: one_line(_error_text(j["last_error"]), 60)),
        ],
        empty="no dead-lettered actions",
    )
    return 0


def _error_text(error: Any) -> Any:
    if isinstance(error, dict):
        return error.get("error", error)
    return error


def run_show(args: argparse.Namespace) -> int:
    job = client_of(args).get(f"/v1/dlq/{args.id}")
    if args.json:
        print_json(job)
    else:
        document(job)
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
