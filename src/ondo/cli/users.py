"""`ondo users add|list|set-role|remove`: the users and service accounts of a namespace. `add`
prints the new user's first token as its last line of output
(`TOKEN=$(ondo users add bob | tail -1)`)."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.backends.store.repositories.tokens import ROLES
from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import listing, local_time

NAMESPACE_HELP = "the namespace (default: your token's; the platform admin may name any)"


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="users and service accounts of a namespace")
    usub = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = usub.add_parser("add", help="add a user; its first token is the last line printed")
    add.add_argument("name", help="the user's name, e.g. bob (a citizen's is its subject name)")
    add.add_argument("--role", choices=ROLES, default="developer", help="default: developer")
    add.add_argument("--namespace", help=NAMESPACE_HELP)
    add.add_argument("--service", action="store_true", help="a service account, not a person")
    add.set_defaults(func=run_add)
    lst = usub.add_parser("list", help="list the users of the namespace")
    lst.add_argument("--namespace", help=NAMESPACE_HELP)
    add_json_flag(lst, '{"users": [{name, namespace, role, kind, created_at, created_by}]}')
    lst.set_defaults(func=run_list)
    role = usub.add_parser("set-role", help="change a user's role (its tokens follow at once)")
    role.add_argument("name", help="the user's name (see `ondo users list`)")
    role.add_argument("role", choices=ROLES, help="the new role")
    role.add_argument("--namespace", help=NAMESPACE_HELP)
    role.set_defaults(func=run_set_role)
    remove = usub.add_parser("remove", help="remove a user: its tokens are revoked at once")
    remove.add_argument("name", help="the user's name (see `ondo users list`)")
    remove.add_argument("--namespace", help=NAMESPACE_HELP)
    remove.set_defaults(func=run_remove)


def run_add(args: argparse.Namespace) -> int:
    kind = "service" if args.service else "user"
    added = client_of(args).add_user(args.name, args.role, kind, args.namespace)
    user = added["user"]
    print(
        f"added {user['kind']} {user['name']} (role {user['role']}) in namespace"
        f" {user['namespace']}; its first token (id {added['id']}) is shown once, below:"
    )
    print(added["token"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).users(args.namespace)["users"]
    listing(
        args.json,
        "users",
        found,
        [
            ("NAME", lambda u: u["name"]),
            ("ROLE", lambda u: u["role"]),
            ("KIND", lambda u: u["kind"]),
            ("CREATED", lambda u: local_time(u["created_at"])),
            ("BY", lambda u: u["created_by"]),
        ],
        empty="no users; add one: ondo users add NAME --role developer",
    )
    return 0


def run_set_role(args: argparse.Namespace) -> int:
    user = client_of(args).set_user_role(args.name, args.role, args.namespace)["user"]
    print(f"{user['name']} is now {user['role']} in namespace {user['namespace']}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    removed = client_of(args).remove_user(args.name, args.namespace)
    print(f"removed user {args.name}; {removed['tokens_revoked']} live token(s) revoked")
    return 0
