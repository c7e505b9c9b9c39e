"""`ondo contacts list|set|delete|group|ungroup`: the notify action's address book without a
deploy (what ondo.yaml's `contacts:` and `groups:` declare, managed by hand)."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import print_json, table
from ondo.errors import ValidationError


def register(sub: Any) -> None:
    contacts = sub.add_parser("contacts", help="contacts and groups: who notify can reach")
    csub = contacts.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = csub.add_parser("list", help="list contacts (addresses masked) and groups")
    add_json_flag(lst, '{"contacts": [{name, channels, app}], "groups": [{name, members, app}]}')
    lst.set_defaults(func=run_list)
    put = csub.add_parser("set", help="create or replace a contact: NAME CHANNEL=URL …")
    put.add_argument("name", help="the contact's name, e.g. bob")
    put.add_argument(
        "channels", nargs="+", metavar="CHANNEL=URL", help="e.g. email=mailto://bob@example.org"
    )
    put.set_defaults(func=run_set)
    delete = csub.add_parser("delete", help="delete a contact (refused while a group lists it)")
    delete.add_argument("name", help="the contact's name (see `ondo contacts list`)")
    delete.set_defaults(func=run_delete)
    group = csub.add_parser("group", help="create or replace a group: NAME MEMBER …")
    group.add_argument("name", help="the group's name, e.g. oncall")
    group.add_argument("members", nargs="+", metavar="MEMBER", help="a contact or contact.channel")
    group.set_defaults(func=run_group)
    ungroup = csub.add_parser("ungroup", help="delete a group (its contacts stay)")
    ungroup.add_argument("name", help="the group's name (see `ondo contacts list`)")
    ungroup.set_defaults(func=run_ungroup)


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).get("/v1/contacts")
    if args.json:
        print_json(found)
        return 0
    table(
        found["contacts"],
        [
            ("CONTACT", lambda c: c["name"]),
            ("CHANNELS", lambda c: ", ".join(f"{k}={v}" for k, v in c["channels"].items())),
            ("APP", lambda c: c["app"] or "-"),
        ],
        empty="no contacts; add one: ondo contacts set NAME CHANNEL=URL",
    )
    if found["groups"]:
        print()
        table(
            found["groups"],
            [
                ("GROUP", lambda g: g["name"]),
                ("MEMBERS", lambda g: ", ".join(g["members"])),
                ("APP", lambda g: g["app"] or "-"),
            ],
            empty="",
        )
    return 0


def _channels(pairs: list[str]) -> dict[str, str]:
    channels: dict[str, str] = {}
    for pair in pairs:
        channel, sep, url = pair.partition("=")
        if not sep or not channel or not url:
            raise ValidationError(f"{pair!r}: give each channel as CHANNEL=URL, e.g. ntfy=ntfy://t")
        if channel in channels:
            raise ValidationError(f"channel {channel!r} is given twice")
        channels[channel] = url
    return channels


def run_set(args: argparse.Namespace) -> int:
    body = {"channels": _channels(args.channels)}
    contact = client_of(args).put(f"/v1/contacts/{args.name}", body)
    print(f"contact {contact['name']}: {', '.join(sorted(contact['channels']))}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    client_of(args).delete(f"/v1/contacts/{args.name}")
    print(f"deleted contact {args.name}")
    return 0


def run_group(args: argparse.Namespace) -> int:
    group = client_of(args).put(f"/v1/groups/{args.name}", {"members": args.members})
    print(f"group {group['name']}: {', '.join(group['members'])}")
    return 0


def run_ungroup(args: argparse.Namespace) -> int:
    client_of(args).delete(f"/v1/groups/{args.name}")
    print(f"deleted group {args.name}")
    return 0
