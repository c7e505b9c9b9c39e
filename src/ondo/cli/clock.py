"""`ondo clock show|advance DURATION`: move a platform started with ONDO_CLOCK=manual."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import client_of
from ondo.cli.output import fields, local_time, print_json
from ondo.durations import parse_duration


def register(sub: Any) -> None:
    clock = sub.add_parser(
        "clock", help="the manual clock of a platform run with ONDO_CLOCK=manual"
    )
    csub = clock.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = csub.add_parser("show", help="print the platform's current time")
    show.add_argument("--json", action="store_true", help="print a JSON document: {now, manual}")
    show.set_defaults(func=run_show)
    advance = csub.add_parser(
        "advance", help="dispatch pending events, move the clock, fire the timers that fell due"
    )
    advance.add_argument("duration", help="how far to move: 90s, 15m, 2h, 1d or 1h30m")
    advance.add_argument(
        "--json", action="store_true", help="print a JSON document: {now, before, after}"
    )
    advance.set_defaults(func=run_advance)


def run_show(args: argparse.Namespace) -> int:
    data = client_of(args).get("/v1/clock")
    if args.json:
        print_json(data)
    else:
        print(f"platform time {local_time(data['now'])} (manual clock)")
    return 0


def run_advance(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.duration, bare_seconds=True)
    data = client_of(args).post("/v1/clock/advance", {"seconds": seconds})
    if args.json:
        print_json(data)
        return 0
    rounds = [data.get("before") or {}, data.get("after") or {}]
    print(f"clock moved {args.duration} to {local_time(data['now'])}")
    fields(
        [
            ("events dispatched", sum(r.get("dispatched", 0) for r in rounds)),
            ("timers fired", sum(r.get("timers_fired", 0) for r in rounds)),
        ]
    )
    return 0
