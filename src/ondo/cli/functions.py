"""`ondo functions list|show|versions|rollback|delete`."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import document, listing, local_time, print_json, table


def register(sub: Any) -> None:
    fns = sub.add_parser("functions", help="deployed functions and their versions")
    fsub = fns.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = fsub.add_parser("list", help="list functions with their current version")
    add_json_flag(lst, '{"functions": [{name, version, handler, created_at, …}]}')
    lst.set_defaults(func=run_list)
    shw = fsub.add_parser("show", help="show a function's current version")
    shw.add_argument("name", help="the function's name (see `ondo functions list`)")
    add_json_flag(shw, "{name, version, handler, timeout, memory, created_at, …}")
    shw.set_defaults(func=run_show)
    ver = fsub.add_parser("versions", help="list a function's versions (* marks the current one)")
    ver.add_argument("name", help="the function's name (see `ondo functions list`)")
    add_json_flag(ver, '{"name", "current", "versions": [{version, created_at, …}]}')
    ver.set_defaults(func=run_versions)
    rb = fsub.add_parser("rollback", help="make an earlier version current")
    rb.add_argument("name", help="the function's name (see `ondo functions list`)")
    rb.add_argument(
        "version", type=int, help="the version to make current (`ondo functions versions NAME`)"
    )
    rb.set_defaults(func=run_rollback)
    dele = fsub.add_parser("delete", help="delete a function and all its versions")
    dele.add_argument("name", help="the function's name (see `ondo functions list`)")
    dele.add_argument(
        "--force", action="store_true", help="also when enabled rules invoke it: disable them"
    )
    dele.set_defaults(func=run_delete)


def run_list(args: argparse.Namespace) -> int:
    functions = client_of(args).get("/v1/functions")["functions"]
    listing(
        args.json,
        "functions",
        functions,
        [
            ("NAME", lambda f: f["name"]),
            ("VERSION", lambda f: f["version"]),
            ("HANDLER", lambda f: f["handler"]),
            ("TIMEOUT", lambda f: f"{f['timeout']:g} s"),
            ("MEMORY", lambda f: f"{f['memory']} MiB"),
            ("CONCURRENCY", lambda f: f["concurrency"]),
            ("DEPLOYED", lambda f: local_time(f["created_at"])),
        ],
        empty="no functions deployed; try `ondo deploy DIR`",
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    fn = client_of(args).get(f"/v1/functions/{args.name}")
    if args.json:
        print_json(fn)
        return 0
    document(fn)
    return 0


def run_versions(args: argparse.Namespace) -> int:
    data = client_of(args).get(f"/v1/functions/{args.name}/versions")
    if args.json:
        print_json({"name": args.name, **data})
        return 0
    table(
        data["versions"],
        [
            (
                "VERSION",
                lambda v: f"{'*' if v['version'] == data['current'] else ' '} {v['version']}",
            ),
            ("DEPLOYED", lambda v: local_time(v["created_at"])),
            ("CODE", lambda v: v["code_sha256"][:12]),
            ("HANDLER", lambda v: v["handler"]),
        ],
        empty=f"{args.name} has no versions",
    )
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    data = client_of(args).post(f"/v1/functions/{args.name}/rollback", {"version": args.version})
    print(f"{data['name']} is now at version {data['current']}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    path = f"/v1/functions/{args.name}" + ("?force=true" if args.force else "")
    data = client_of(args).delete(path)
    for rule in data.get("disabled_rules", []):
        print(f"disabled rule {rule}: it invoked {args.name}")
    print(f"deleted {args.name}")
    return 0
