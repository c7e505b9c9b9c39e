"""`ondo secrets set|list|delete`: values go in (from stdin, or a prompt that does not echo)
and never come back out; only the functions that declare a secret receive it."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import local_time, print_json, table
from ondo.errors import ValidationError

READ_LIMIT = 64 * 1024 + 2  # the server's limit (64 KiB) and a newline: it answers beyond


def register(sub: Any) -> None:
    secrets = sub.add_parser("secrets", help="secrets that functions get as environment variables")
    ssub = secrets.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = ssub.add_parser(
        "set",
        help="create or replace a secret; the value is read from stdin (a prompt on a terminal)",
    )
    put.add_argument("name", help="the secret's name, as its environment variable: DB_PASSWORD")
    put.set_defaults(func=run_set)
    lst = ssub.add_parser("list", help="list secrets: names, dates and who set them (no values)")
    add_json_flag(lst, '{"secrets": [{name, namespace, created_at, updated_at, created_by}]}')
    lst.set_defaults(func=run_list)
    delete = ssub.add_parser("delete", help="delete a secret (functions declaring it then fail)")
    delete.add_argument("name", help="the secret's name (see `ondo secrets list`)")
    delete.set_defaults(func=run_delete)


def read_value(name: str) -> bytes:
    """The value: typed at a prompt that does not echo, or piped in (one trailing newline, as
    `echo` adds, is dropped). Refused when empty."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name} (not shown): ").encode("utf-8")
    else:
        value = sys.stdin.buffer.read(READ_LIMIT)
        value = value.removesuffix(b"\n").removesuffix(b"\r")
    if not value:
        raise ValidationError(
            f"secret {name!r}: the value is empty; pipe it in (`printf %s VALUE | ondo secrets"
            f" set {name}`, or `ondo secrets set {name} < FILE`) or type it at the prompt"
        )
    return value


def run_set(args: argparse.Namespace) -> int:
    value = read_value(args.name)
    answer = client_of(args).set_secret(args.name, value)
    verb = "created" if answer["created"] else "updated"
    print(f"secret {answer['name']} {verb} in namespace {answer['namespace']}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).secrets()
    if args.json:
        print_json(found)
        return 0
    table(
        found["secrets"],
        [
            ("SECRET", lambda s: s["name"]),
            ("UPDATED", lambda s: local_time(s["updated_at"])),
            ("CREATED", lambda s: local_time(s["created_at"])),
            ("BY", lambda s: s["created_by"]),
        ],
        empty="no secrets; set one: ondo secrets set NAME (the value is read from stdin)",
    )
    return 0


def run_delete(args: argparse.Namespace) -> int:
    client_of(args).delete_secret(args.name)
    print(f"deleted secret {args.name}")
    return 0
