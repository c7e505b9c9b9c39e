"""`ondo sources list|show NAME`: what each source hears, and how it is doing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import fields, for_json, listing, localize, print_json


def register(sub: Any) -> None:
    sources = sub.add_parser("sources", help="sources: where events come from (mqtt, ftp, …)")
    ssub = sources.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = ssub.add_parser("list", help="list sources with their state")
    add_json_flag(lst, '{"sources": [{name, kind, state, events, errors, last_error, …}]}')
    lst.set_defaults(func=run_list)
    shw = ssub.add_parser("show", help="show a source: state, counters, last error, settings")
    shw.add_argument("name", help="the source's name (see `ondo sources list`)")
    add_json_flag(shw, "{name, kind, state, events, errors, last_error, settings, …}")
    shw.set_defaults(func=run_show)


def _state(source: dict[str, Any]) -> str:
    detail = source.get("detail")
    return f"{source['state']} ({detail})" if detail else str(source["state"])


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).get("/v1/sources")["sources"]
    listing(
        args.json,
        "sources",
        found,
        [
            ("NAME", lambda s: s["name"]),
            ("KIND", lambda s: s["kind"]),
            ("STATE", _state),
            ("EVENTS", lambda s: s["events"]),
            ("ERRORS", lambda s: s["errors"]),
            ("LAST ERROR", lambda s: s.get("last_error")),
        ],
        empty="no sources; declare them under `sources:` in ondo.yaml (docs/sources.md)",
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    source = client_of(args).get(f"/v1/sources/{args.name}")
    if args.json:
        print_json(source)
        return 0
    shown = for_json({k: v for k, v in source.items() if k != "settings"})
    fields((key, value) for key, value in shown.items())
    print("settings:")
    print(localize(json.dumps(source.get("settings", {}), indent=2, ensure_ascii=False)))
    return 0
