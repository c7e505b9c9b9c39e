"""`ondo deploy [DIR] [--dry-run] [--take-over] [--force] [--json]`: pack, send, print the plan."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ondo.cli.common import add_json_flag, client_of
from ondo.cli.output import print_json
from ondo.deploy.bundle import pack
from ondo.deploy.manifest import read_manifest

SYMBOLS = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}


def register(sub: Any) -> None:
    cmd = sub.add_parser("deploy", help="apply DIR/ondo.yaml: print the plan, then apply it")
    cmd.add_argument("dir", nargs="?", default=".", help="the app directory (default: .)")
    cmd.add_argument("--dry-run", action="store_true", help="print the plan only, change nothing")
    cmd.add_argument(
        "--take-over",
        action="store_true",
        help="move functions and rules that belong to another app into this one",
    )
    cmd.add_argument(
        "--force",
        action="store_true",
        help="delete functions that enabled rules invoke, disabling those rules",
    )
    add_json_flag(cmd, '{"app", "namespace", "steps": [...], "dry_run", "applied": [...]}')
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    app_dir = Path(args.dir).resolve()
    manifest = read_manifest(app_dir)  # fail fast, locally, with file:line
    params = {
        "dry_run": str(args.dry_run).lower(),
        "app": manifest.app,
        "dir": str(app_dir),
        "take_over": str(args.take_over).lower(),
        "force": str(args.force).lower(),
    }
    request: dict[str, Any] = {
        "content": pack(app_dir),
        "params": params,
        "headers": {"Content-Type": "application/gzip"},
    }
    client = client_of(args)
    if args.json:
        print_json(client.request("POST", "/v1/deployments", **request).json())
        return 0
    print_result(client.watched("POST", "/v1/deployments", _show_progress, **request))
    return 0


def _show_progress(step: str) -> None:
    """Each step as it starts, on a terminal; nothing in a pipe or a log."""
    if sys.stderr.isatty():
        print(f"  … {step}", file=sys.stderr, flush=True)


def print_result(result: dict[str, Any]) -> None:
    print(f"app {result['app']} (namespace {result['namespace']})")
    for step in result["steps"]:
        print(
            f"  {SYMBOLS[step['change']]} {step['change']:<9} {step['kind']} {step['name']}"
            f"  {step['detail']}"
        )
    if result["dry_run"]:
        print("dry run: nothing applied")
        return
    for applied in result.get("applied", []):
        if "version" in applied and applied["change"] != "unchanged":
            print(f"  {applied['kind']} {applied['name']} is now version {applied['version']}")
        for rule in applied.get("disabled_rules", []):
            print(f"  disabled rule {rule}: it invoked the deleted function {applied['name']}")
