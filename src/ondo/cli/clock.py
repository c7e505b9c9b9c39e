"""`ondo clock show|advance DURATION`: move a platform started with ONDO_CLOCK=manual."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ondo.cli.common import client_of
from ondo.cli.output import fields, local_time, print_json
from ondo.errors import ValidationError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `1d`, `1h30m`, `250ms` or plain seconds, as seconds."""
    raw = text.strip().lower()
    try:
        return _non_negative(float(raw), text)
    except ValueError:
        pass
    parts = _PART.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise ValidationError(
            f"duration {text!r} is not understood; write it like 90s, 15m, 2h, 1d or 1h30m"
        )
    return _non_negative(sum(float(n) * _SECONDS[u] for n, u in parts), text)


def _non_negative(seconds: float, text: str) -> float:
    if seconds < 0:
        raise ValidationError(f"duration {text!r} is negative; the clock only moves forward")
    return seconds


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
    seconds = parse_duration(args.duration)
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
