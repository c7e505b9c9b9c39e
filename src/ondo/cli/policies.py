"""`ondo policies add|list|remove`: grant a principal one permission on resources matching a
pattern (beyond its role). `add` prints the policy's id as its last line of output."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import listing, local_time
from ondo.security.policy import Permission

GRANTABLE = [p.value for p in Permission if p is not Permission.PLATFORM]


def register(sub: Any) -> None:
    policies = sub.add_parser("policies", help="per-resource permissions beyond a role")
    psub = policies.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = psub.add_parser("add", help="grant a permission; the policy's id is the last line")
    add.add_argument("--to", required=True, metavar="NAME", help="the user or service account")
    add.add_argument("--allow", required=True, choices=GRANTABLE, help="the permission")
    add.add_argument(
        "--resource",
        metavar="PATTERN",
        help="which resources, e.g. function:report* or type:orders.* (default: all)",
    )
    add.set_defaults(func=run_add)
    lst = psub.add_parser("list", help="list the namespace's policies")
    add_json_flag(lst, '{"policies": [{id, principal, permission, resource, created_at, …}]}')
    lst.set_defaults(func=run_list)
    remove = psub.add_parser("remove", help="remove a policy (effective on the next call)")
    remove.add_argument("id", help="the policy's id, pol_… (see `ondo policies list`)")
    remove.set_defaults(func=run_remove)


def run_add(args: argparse.Namespace) -> int:
    policy = client_of(args).add_policy(args.to, args.allow, args.resource)
    print(
        f"{policy['principal']} may now {policy['permission']} on {policy['resource']}"
        " in namespace " + policy["namespace"]
    )
    print(policy["id"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).policies()["policies"]
    listing(
        args.json,
        "policies",
        found,
        [
            ("ID", lambda p: p["id"]),
            ("PRINCIPAL", lambda p: p["principal"]),
            ("ALLOW", lambda p: p["permission"]),
            ("RESOURCE", lambda p: p["resource"]),
            ("CREATED", lambda p: local_time(p["created_at"])),
            ("BY", lambda p: p["created_by"]),
        ],
        empty="no policies; add one: ondo policies add --to NAME --allow invoke",
    )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    client_of(args).remove_policy(args.id)
    print(f"removed policy {args.id}")
    return 0
