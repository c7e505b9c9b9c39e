"""`ondo emit TYPE`, `ondo events tail [--follow]`, `ondo events show ID`, `ondo events replay`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ondo.cli.common import add_json_flag, client_of, read_data
from ondo.cli.output import document, localize, print_json
from ondo.client import Client
from ondo.errors import ValidationError

STRUCTURED = "application/cloudevents+json"
FOLLOW_WAIT_S = 10  # below uvicorn's graceful-shutdown wait (15 s)


def register(sub: Any) -> None:
    emit = sub.add_parser("emit", help="send one CloudEvent to the bus and print its id")
    emit.add_argument("type", help="the event type, e.g. order.created")
    emit.add_argument("--source", default="ondo.cli", help="the event source (default ondo.cli)")
    emit.add_argument("--subject", help="the event subject")
    emit.add_argument("--data", help="the payload: JSON text, @FILE or @- for stdin")
    emit.add_argument("--id", dest="event_id", help="the event id (default: a new UUIDv7)")
    emit.add_argument("--time", help="the event time, RFC 3339 (default: now)")
    emit.add_argument(
        "--ext",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extension attribute (repeatable)",
    )
    add_json_flag(emit, '{"ids": [the event id]}')
    emit.set_defaults(func=run_emit)

    events = sub.add_parser("events", help="read the event log: tail, show, replay")
    commands = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    tail = commands.add_parser("tail", help="print the latest events; --follow for new ones")
    tail.add_argument("--type", dest="type_glob", help="only types matching this glob (order.*)")
    tail.add_argument("--limit", type=int, default=20, help="how many past events (default 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    add_json_flag(tail, "one stored event per line (JSON Lines): {seq, received_at, event}")
    tail.set_defaults(func=run_tail)
    show_cmd = commands.add_parser("show", help="show one stored event by id")
    show_cmd.add_argument(
        "id", help="the event id (printed by `ondo emit`, shown by `events tail`)"
    )
    show_cmd.add_argument("--source", help="the event source, when several sources used the id")
    add_json_flag(show_cmd, "{seq, received_at, namespace, event}")
    show_cmd.set_defaults(func=run_show)
    replay = commands.add_parser("replay", help="re-dispatch the events received since a time")
    replay.add_argument(
        "--since", required=True, help="RFC 3339 time, or a duration back from now: 15m, 2h, 1d, 2w"
    )
    replay.add_argument("--rule", help="only to this rule (default: every rule)")
    replay.add_argument("--type", dest="type_glob", help="only types matching this glob")
    add_json_flag(replay, '{"since", "rule", "events": [...], "dispatched"}')
    replay.set_defaults(func=run_replay)


def build_event(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"specversion": "1.0", "type": args.type, "source": args.source}
    optional = {"id": args.event_id, "subject": args.subject, "time": args.time}
    doc.update({name: value for name, value in optional.items() if value is not None})
    for item in args.ext:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"--ext {item!r} must look like NAME=VALUE")
        doc[name] = int(value) if value.lstrip("-").isdigit() else value
    if args.data is not None:
        doc["data"] = json.loads(read_data(args.data))
        doc["datacontenttype"] = "application/json"
    return doc


def run_emit(args: argparse.Namespace) -> int:
    response = client_of(args).request(
        "POST",
        "/v1/events",
        content=json.dumps(build_event(args)).encode(),
        headers={"Content-Type": STRUCTURED},
    )
    answer = response.json()
    if args.json:
        print_json(answer)
    else:
        print(answer["ids"][0])
    return 0


def format_line(stored: dict[str, Any]) -> str:
    event = stored["event"]
    data = event.get("data", event.get("data_base64"))
    payload = "" if data is None else " " + json.dumps(data, separators=(",", ":"))
    subject = f" [{event['subject']}]" if event.get("subject") else ""
    return (
        f"{stored['seq']:>6} {localize(event['time'])} {event['type']} {event['source']}{subject} "
        f"{event['id']}{payload}"
    )


def _print(stored: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(stored, lines=True)
    else:
        print(format_line(stored), flush=True)


def run_tail(args: argparse.Namespace) -> int:
    client = client_of(args)
    page = client.get("/v1/events", limit=max(1, args.limit), type=args.type_glob)
    for stored in page["events"]:
        _print(stored, args.json)
    cursor = page["next"]
    while args.follow:
        cursor = _follow_once(client, cursor, args)
    return 0


def _follow_once(client: Client, cursor: int, args: argparse.Namespace) -> int:
    page = client.get(
        "/v1/events", after=cursor, type=args.type_glob, limit=500, wait=FOLLOW_WAIT_S
    )
    for stored in page["events"]:
        _print(stored, args.json)
    next_cursor: int = page["next"]
    return next_cursor


def run_show(args: argparse.Namespace) -> int:
    stored = client_of(args).get(f"/v1/events/{args.id}", source=args.source)
    if args.json:
        print_json(stored)
        return 0
    document({**stored, **stored["event"]}, skip=["event"])
    return 0


def run_replay(args: argparse.Namespace) -> int:
    body = {"since": args.since, "rule": args.rule, "type": args.type_glob}
    result = client_of(args).post("/v1/events/replay", {k: v for k, v in body.items() if v})
    if args.json:
        print_json(result)
        return 0
    target = f"rule {result['rule']}" if result.get("rule") else "every rule"
    print(
        f"{len(result['events'])} event(s) since {localize(result['since'])}; "
        f"{result['dispatched']} dispatched to {target}"
    )
    if result.get("message"):
        print(result["message"])
    return 0
