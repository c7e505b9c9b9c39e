"""`ondo audit list|verify`: who did what, refused calls, and whether the chain is whole.

`ondo audit list --about me` answers a data subject's question "who used my data, when, by
which rule": the audit entries about the caller (grants, rules about it, …) merged in time
order with the rule decisions about events whose subject is the caller.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import local_time, print_json, table

ME = "me"


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the audit log: who changed what, refused calls")
    asub = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = asub.add_parser("list", help="list audit entries (yours, or the namespace's for admins)")
    lst.add_argument(
        "--about",
        metavar="me|NAME",
        help="entries about a data subject, with the rule decisions about its events"
        " ('me': you — who used my data, when, by which rule)",
    )
    lst.add_argument("--principal", metavar="NAME", help="only entries made by NAME")
    lst.add_argument("--after", type=int, metavar="SEQ", help="the entries after SEQ, oldest first")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_json_flag(lst, '{"caller", "entries": [{seq, at, principal, action, …}], "decisions"}')
    lst.set_defaults(func=run_list)
    verify = asub.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    verify.add_argument(
        "--expect",
        metavar="SEQ:HASH",
        help="a head printed by an earlier verify, kept elsewhere: it must still be there",
    )
    add_json_flag(verify, "{ok, checked, head: {seq, hash}, problem, broken_seq, anchors}")
    verify.set_defaults(func=run_verify)


def run_list(args: argparse.Namespace) -> int:
    about = "@me" if args.about == ME else args.about
    found = client_of(args).audit(
        about=about, principal=args.principal, after=args.after, limit=args.limit
    )
    if args.json:
        print_json(found)
        return 0
    if about is None:
        _entries(found["entries"])
    else:
        subject = found["caller"] if about == "@me" else about
        _timeline(found["entries"], found.get("decisions", []), subject)
    return 0


def _entries(entries: list[dict[str, Any]]) -> None:
    table(
        entries,
        [
            ("SEQ", lambda e: e["seq"]),
            ("WHEN", lambda e: local_time(e["at"])),
            ("WHO", lambda e: e["principal"] or "-"),
            ("ACTION", lambda e: e["action"]),
            ("RESOURCE", lambda e: e["resource"] or "-"),
            ("OUTCOME", lambda e: e["outcome"]),
            ("ABOUT", lambda e: e["about"] or "-"),
        ],
        empty="no audit entries",
    )


def _timeline(entries: list[dict[str, Any]], decisions: list[dict[str, Any]], who: str) -> None:
    """Audit entries and rule decisions about `who`, oldest first, one row each."""
    rows = [_entry_row(e) for e in entries] + [_decision_row(d) for d in decisions]
    rows.sort(key=lambda row: row["at"])
    table(
        rows,
        [
            ("WHEN", lambda r: local_time(r["at"])),
            ("WHO", lambda r: r["who"]),
            ("WHAT", lambda r: r["what"]),
            ("OUTCOME", lambda r: r["outcome"]),
            ("ALLOWED BY", lambda r: r["allowed"]),
        ],
        empty=f"nothing about {who}: no audit entries and no rule decisions",
    )


def _entry_row(entry: dict[str, Any]) -> dict[str, Any]:
    what = f"{entry['action']} {entry['resource']}".strip()
    return {
        "at": entry["at"],
        "who": entry["principal"] or "-",
        "what": what,
        "outcome": entry["outcome"],
        "allowed": "-",
    }


def _decision_row(decision: dict[str, Any]) -> dict[str, Any]:
    event = decision["event"]
    return {
        "at": decision["at"],
        "who": decision.get("owner") or "-",
        "what": f"rule {decision['rule']} on {event['type']} {event['id']}",
        "outcome": decision["outcome"],
        "allowed": f"grant {decision['grant']}" if decision.get("grant") else "-",
    }


def run_verify(args: argparse.Namespace) -> int:
    verdict = client_of(args).audit_verify(args.expect)
    if args.json:
        print_json(verdict)
    head = verdict["head"]
    if not verdict["ok"]:
        print(
            f"error: the audit chain is broken at entry {verdict['broken_seq']}:"
            f" {verdict['problem']} ({verdict['checked']} entries before it are whole)",
            file=sys.stderr,
        )
        return 1
    if not args.json:
        anchors = ", ".join(verdict["anchors"]) or "none"
        print(f"audit chain whole: {verdict['checked']} entries checked; anchors: {anchors}")
        print(f"head {head['seq']}:{head['hash']}")
        print("(keep the head line elsewhere: `ondo audit verify --expect SEQ:HASH` later proves")
        print(" that nothing up to it was removed or rewritten)")
    return 0
