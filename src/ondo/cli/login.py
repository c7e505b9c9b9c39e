"""`ondo login`, `ondo logout`, `ondo whoami`: sign the CLI in to a platform with a token an
admin gave you (`ondo users add` or `ondo tokens create` printed it), kept per URL in
`$XDG_CONFIG_HOME/ondo/credentials.json` (0600; see ondo/credentials.py)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from ondo import credentials
from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import local_time, print_json
from ondo.client import Client, platform_url
from ondo.errors import ClientError, ValidationError


def register(sub: Any) -> None:
    login = sub.add_parser("login", help="sign in to a platform with your token (kept per URL)")
    login.add_argument(
        "--token-stdin",
        action="store_true",
        help="read the token from stdin (also when stdin is not a terminal)",
    )
    login.set_defaults(func=run_login)
    logout = sub.add_parser("logout", help="forget the token saved for the platform's URL")
    logout.add_argument(
        "--revoke", action="store_true", help="revoke the token on the platform first"
    )
    logout.set_defaults(func=run_logout)
    whoami = sub.add_parser("whoami", help="who the token names: name, namespace, role")
    add_json_flag(whoami, "{name, namespace, role, kind, token_id, expires_at, policies}")
    whoami.set_defaults(func=run_whoami)


def _read_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token).strip()
    if args.token_stdin or not sys.stdin.isatty():
        token = sys.stdin.readline().strip()
    else:
        token = getpass.getpass("token (from `ondo users add` or `ondo tokens create`): ").strip()
    if not token:
        raise ValidationError(
            "no token given: paste the token an admin of your namespace gave you, or pipe it:"
            " `ondo login --token-stdin < token.txt`"
        )
    return token


def run_login(args: argparse.Namespace) -> int:
    token = _read_token(args)
    client = Client(args.url, token)
    try:
        me = client.login()
    except ClientError as exc:
        if exc.status == 401:
            raise ClientError(
                f"ondo at {client.url} refused this token (unknown, expired or revoked); ask an"
                " admin of your namespace for a new one (`ondo tokens create --for NAME`)",
                401,
                exc.code,
            ) from None
        raise
    saved = credentials.save(
        client.url,
        {
            "token": token,
            "name": me["name"],
            "namespace": me["namespace"],
            "role": me["role"],
            "token_id": me["token_id"],
            "expires_at": me["expires_at"],
            "saved_at": time.time(),
        },
    )
    expires = local_time(me["expires_at"]) if me["expires_at"] else "never"
    print(
        f"logged in to {client.url} as {me['name']} (role {me['role']}, namespace"
        f" {me['namespace']}); the token expires {expires}; saved in {saved}"
    )
    return 0


def run_logout(args: argparse.Namespace) -> int:
    url = platform_url(args.url)
    token = credentials.token_for(url)
    if token is None:
        print(f"no login saved for {url} (in {credentials.path()})")
        return 0
    if args.revoke:
        signed_in = Client(url, token)
        signed_in.revoke_token(signed_in.whoami()["token_id"])
    credentials.forget(url)
    revoked = " and revoked its token" if args.revoke else ""
    print(f"logged out of {url}{revoked} (removed from {credentials.path()})")
    return 0


def run_whoami(args: argparse.Namespace) -> int:
    me = client_of(args).whoami()
    if args.json:
        print_json(me)
        return 0
    admin = " (the platform admin)" if me.get("platform_admin") else ""
    print(f"{me['name']}{admin}: role {me['role']}, namespace {me['namespace']}, {me['kind']}")
    expires = local_time(me["expires_at"]) if me["expires_at"] else "never"
    print(f"token {me['token_id']}, expires {expires}")
    for policy in me.get("policies", []):
        print(f"policy: may {policy['permission']} on {policy['resource']}")
    return 0
