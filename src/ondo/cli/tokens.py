"""`ondo tokens create|list|revoke`: bearer tokens, one's own or (for an admin of the namespace)
anyone's. `create` prints the token as its last line of output; it is shown only then."""

from __future__ import annotations

import argparse
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import listing, local_time

NAMESPACE_HELP = "the namespace (default: your token's; the platform admin may name any)"


def register(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="bearer tokens: create, list, revoke")
    tsub = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="issue a token; it is the last line printed")
    create.add_argument(
        "--for", dest="principal", metavar="NAME", help="another user's (needs the users right)"
    )
    create.add_argument("--expires", metavar="DURATION", help="lifetime, e.g. 30d or 12h")
    create.add_argument("--label", help="what it is for, e.g. laptop or ci")
    create.add_argument("--namespace", help=NAMESPACE_HELP)
    create.set_defaults(func=run_create)
    lst = tsub.add_parser("list", help="your tokens (all of the namespace for its admins)")
    lst.add_argument("--namespace", help=NAMESPACE_HELP)
    add_json_flag(lst, '{"tokens": [{id, principal, label, state, expires_at, revoked_at, …}]}')
    lst.set_defaults(func=run_list)
    revoke = tsub.add_parser("revoke", help="revoke a token: refused from the next call on")
    revoke.add_argument("id", help="the token's id, tok_… (see `ondo tokens list`)")
    revoke.add_argument("--namespace", help=NAMESPACE_HELP)
    revoke.set_defaults(func=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    issued = client_of(args).create_token(args.principal, args.expires, args.label, args.namespace)
    expires = local_time(issued["expires_at"]) if issued["expires_at"] else "never"
    print(
        f"token {issued['id']} for {issued['principal']} (role {issued['role']}) in namespace"
        f" {issued['namespace']}, expires {expires}; it is shown once, below:"
    )
    print(issued["token"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    found = client_of(args).tokens(args.namespace)["tokens"]
    listing(
        args.json,
        "tokens",
        found,
        [
            ("ID", lambda t: t["id"]),
            ("PRINCIPAL", lambda t: t["principal"]),
            ("LABEL", lambda t: t["label"] or "-"),
            ("STATE", lambda t: t["state"]),
            ("CREATED", lambda t: local_time(t["created_at"])),
            ("EXPIRES", lambda t: local_time(t["expires_at"]) if t["expires_at"] else "never"),
        ],
        empty="no tokens; create one: ondo tokens create --expires 30d",
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    revoked = client_of(args).revoke_token(args.id, args.namespace)
    print(f"revoked token {revoked['id']} of {revoked['principal']}")
    return 0
