"""`ondo rules add|list|show|delete|enable|disable|test` and `ondo trace EVENT_ID`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import for_json, listing, localize, print_json
from ondo.errors import ValidationError

RULE_NAME_HELP = "the rule's name (see `ondo rules list`)"


def register(sub: Any) -> None:
    rules = sub.add_parser("rules", help="rules: on <event> where <condition> do <actions>")
    rsub = rules.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = rsub.add_parser("add", help="add a rule written as text")
    add.add_argument("text", help="the rule, e.g. 'on order.placed do invoke ship'")
    add.add_argument("--name", help="rule name (default: derived from the event type)")
    add.add_argument("--replace", action="store_true", help="replace a rule of the same name")
    add.add_argument(
        "--take-over",
        action="store_true",
        help="with --replace: replace a rule another principal wrote (it becomes yours)",
    )
    add.set_defaults(func=run_add)
    lst = rsub.add_parser("list", help="list rules")
    add_json_flag(lst, '{"rules": [{name, enabled, owner, text, compiled, app, …}]}')
    lst.set_defaults(func=run_list)
    shw = rsub.add_parser("show", help="show a rule: its text, compiled JSON and window state")
    shw.add_argument("name", help=RULE_NAME_HELP)
    add_json_flag(shw, "{name, enabled, text, compiled, state, …}")
    shw.set_defaults(func=run_show)
    for name, func, text in (
        ("delete", run_delete, "delete a rule"),
        ("enable", run_enable, "enable a rule"),
        ("disable", run_disable, "disable a rule (its windows and timers are dropped)"),
    ):
        cmd = rsub.add_parser(name, help=text)
        cmd.add_argument("name", help=RULE_NAME_HELP)
        cmd.set_defaults(func=func)
    test = rsub.add_parser("test", help="dry-run rules against an event (no state, no actions)")
    test.add_argument("--event", required=True, help="file with the CloudEvent JSON (- for stdin)")
    test.add_argument("--rule", help="test only this rule")
    test.set_defaults(func=run_test)
    trace = sub.add_parser("trace", help="what an event caused: rules, actions, invocations")
    trace.add_argument("event_id", help="the event id (printed by `ondo emit`)")
    add_json_flag(trace, '{"events": [...], "decisions": [{rule, outcome, jobs, …}], "lines"}')
    trace.set_defaults(func=run_trace)


def run_add(args: argparse.Namespace) -> int:
    body = {"text": args.text, **({"name": args.name} if args.name else {})}
    rule = client_of(args).post(
        "/v1/rules",
        body,
        replace="true" if args.replace else None,
        take_over="true" if args.take_over else None,
    )
    print(f"rule {rule['name']} added")
    print(f"  {rule['text']}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    rules = client_of(args).get("/v1/rules")["rules"]
    listing(
        args.json,
        "rules",
        rules,
        [
            ("NAME", lambda r: r["name"]),
            ("STATE", _state),
            ("OWNER", lambda r: r["owner"]),
            ("APP", lambda r: r.get("app")),
            ("RULE", lambda r: r["text"] or "(JSON rule)"),
        ],
        empty="no rules; try `ondo rules add 'on order.placed do invoke ship'`",
    )
    if not args.json:
        for rule in rules:  # why ondo disabled a rule (it failed, a consent was revoked)
            if rule.get("disabled_reason"):
                print(f"{rule['name']}: disabled by ondo: {rule['disabled_reason']}")
    return 0


def _state(rule: dict[str, Any]) -> str:
    if rule["enabled"]:
        return "enabled"
    return "disabled by ondo" if rule.get("disabled_reason") else "disabled"


def run_show(args: argparse.Namespace) -> int:
    rule = client_of(args).get(f"/v1/rules/{args.name}")
    if args.json:
        print_json(rule)
        return 0
    print(
        f"rule {rule['name']} ({'enabled' if rule['enabled'] else 'disabled'})"
        f", owner {rule['owner']}, namespace {rule['namespace']}"
        + (f", app {rule['app']}" if rule.get("app") else "")
    )
    if rule.get("disabled_reason"):
        print(f"disabled by ondo: {rule['disabled_reason']}")
        print(f"  fix the rule, then `ondo rules enable {rule['name']}`")
    print(f"text:     {rule['text'] or '(given as JSON)'}")
    print("compiled:")
    print(json.dumps(rule["compiled"], indent=2))
    print("state:")
    print(localize(json.dumps(for_json(rule["state"]), indent=2)))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    client_of(args).delete(f"/v1/rules/{args.name}")
    print(f"deleted rule {args.name}")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    client_of(args).post(f"/v1/rules/{args.name}/enable")
    print(f"rule {args.name} enabled")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    client_of(args).post(f"/v1/rules/{args.name}/disable")
    print(f"rule {args.name} disabled")
    return 0


def _read_event(name: str) -> Any:
    try:
        raw = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"--event: cannot read {name}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--event {name}: not valid JSON: {exc}") from None


def run_test(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"event": _read_event(args.event)}
    if args.rule:
        body["rule"] = args.rule
    data = client_of(args).post("/v1/rules/test", body)
    if not data["results"]:
        print("no rules to test")
    for result in data["results"]:
        if result["matches"]:
            print(f"{result['rule']}: matches: {result['effect']}")
        else:
            print(f"{result['rule']}: does not match: {result['reason']}")
    return 0


def run_trace(args: argparse.Namespace) -> int:
    data = client_of(args).get(f"/v1/trace/{args.event_id}")
    if args.json:
        print_json(data)
        return 0
    for line in data["lines"]:
        print(localize(line))
    return 0
