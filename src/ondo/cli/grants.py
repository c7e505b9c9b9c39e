"""`ondo grants add|list|revoke`: consent, given by the person the data is about.

`ondo grants add --to bob --types 'health.*'` lets bob's rules use events about you (the user
whose token runs it) of those types; its last line is the grant's id, for `ondo grants revoke`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import local_time, print_json, table


def register(sub: Any) -> None:
    grants = sub.add_parser("grants", help="consent: whose rules may use events about you")
    gsub = grants.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = gsub.add_parser("add", help="allow a user's rules to use events about you")
    add.add_argument("--to", required=True, metavar="NAME", help="the user you allow, e.g. bob")
    add.add_argument(
        "--types",
        required=True,
        metavar="GLOBS",
        help="event types, comma-separated globs, e.g. 'health.*' or health.bp,health.weight",
    )
    add.add_argument(
        "--expires",
        metavar="WHEN",
        help="when the grant ends: a duration (30d, 12h) or a date (2027-01-31, UTC)",
    )
    add.add_argument("--purpose", metavar="TEXT", help="why, in your words (shown in the list)")
    add.add_argument(
        "--fields",
        metavar="A,B",
        help="only these data fields reach the grantee's actions (the rest is removed)",
    )
    add.set_defaults(func=run_add)
    lst = gsub.add_parser("list", help="the grants you gave and hold (an admin: all of them)")
    add_json_flag(lst, '{"grants": [{id, subject, to, types, fields, expires_at, revoked_at}]}')
    lst.set_defaults(func=run_list)
    revoke = gsub.add_parser("revoke", help="withdraw a grant; the rules that needed it stop")
    revoke.add_argument("id", help="the grant's id (see `ondo grants list`)")
    revoke.set_defaults(func=run_revoke)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"to": args.to, "types": _split(args.types)}
    if args.expires:
        body["expires"] = args.expires
    if args.purpose:
        body["purpose"] = args.purpose
    if args.fields is not None:
        body["fields"] = _split(args.fields)
    grant = client_of(args).post("/v1/grants", body)
    print(f"{grant['subject']} allows {grant['to']}: {', '.join(grant['types'])}{_limits(grant)}")
    print(grant["id"])
    return 0


def _limits(grant: dict[str, Any]) -> str:
    parts = []
    if grant["fields"] is not None:
        parts.append(f"fields {', '.join(grant['fields']) or '(none)'}")
    if grant["expires_at"] is not None:
        parts.append(f"until {local_time(grant['expires_at'])}")
    return f" ({'; '.join(parts)})" if parts else ""


def _state(grant: dict[str, Any]) -> str:
    if grant["revoked_at"] is not None:
        return f"revoked {local_time(grant['revoked_at'])}"
    if grant["expires_at"] is not None:
        return f"until {local_time(grant['expires_at'])}"
    return "live"


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).get("/v1/grants")
    if args.json:
        print_json(found)
        return 0
    table(
        found["grants"],
        [
            ("ID", lambda g: g["id"]),
            ("SUBJECT", lambda g: g["subject"]),
            ("TO", lambda g: g["to"]),
            ("TYPES", lambda g: ",".join(g["types"])),
            ("FIELDS", lambda g: "all" if g["fields"] is None else ",".join(g["fields"])),
            ("STATE", _state),
            ("PURPOSE", lambda g: g["purpose"] or "-"),
        ],
        empty="no grants; allow someone: ondo grants add --to NAME --types 'TYPE.*'",
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    grant = client_of(args).delete(f"/v1/grants/{args.id}")
    print(f"revoked {grant['id']} ({grant['subject']} to {grant['to']})")
    for rule in grant["disabled_rules"]:
        print(f"disabled rule {rule['rule']} of {rule['owner']}: it needed this grant")
    return 0
