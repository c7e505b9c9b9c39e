"""`ondo functions list|show|versions|rollback|delete`."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import client_of, show


def register(sub: Any) -> None:
    fns = sub.add_parser("functions", help="deployed functions and their versions")
    fsub = fns.add_subparsers(dest="action", metavar="ACTION", required=True)
    fsub.add_parser("list", help="list functions").set_defaults(func=run_list)
    for name, func, text in (
        ("show", run_show, "show a function's current version"),
        ("versions", run_versions, "list a function's versions"),
        ("delete", run_delete, "delete a function and all its versions"),
    ):
        cmd = fsub.add_parser(name, help=text)
        cmd.add_argument("name")
        cmd.set_defaults(func=func)
    rb = fsub.add_parser("rollback", help="make an earlier version current")
    rb.add_argument("name")
    rb.add_argument("version", type=int)
    rb.set_defaults(func=run_rollback)


def run_list(args: argparse.Namespace) -> int:
    functions = client_of(args).get("/v1/functions")["functions"]
    if not functions:
        print("no functions deployed; try `ondo deploy DIR`")
    for fn in functions:
        print(
            f"{fn['name']:<24} v{fn['version']:<4} {fn['handler']:<24} timeout {fn['timeout']:g}s"
            f"  memory {fn['memory']} MB  concurrency {fn['concurrency']}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    show(client_of(args).get(f"/v1/functions/{args.name}"))
    return 0


def run_versions(args: argparse.Namespace) -> int:
    data = client_of(args).get(f"/v1/functions/{args.name}/versions")
    for v in data["versions"]:
        mark = "*" if v["version"] == data["current"] else " "
        print(f"{mark} {v['version']:<4} code {v['code_sha256'][:12]}  handler {v['handler']}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    data = client_of(args).post(f"/v1/functions/{args.name}/rollback", {"version": args.version})
    print(f"{data['name']} is now at version {data['current']}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    client_of(args).delete(f"/v1/functions/{args.name}")
    print(f"deleted {args.name}")
    return 0
