"""`ondo deploy [DIR] [--dry-run] [--json]`: pack the app, send it, print the plan."""

from __future__ import annotations

import argparse
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
    add_json_flag(cmd, '{"app", "namespace", "steps": [...], "dry_run", "applied": [...]}')
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    app_dir = Path(args.dir).resolve()
    manifest = read_manifest(app_dir)  # fail fast, locally, with file:line
    result = (
        client_of(args)
        .request(
            "POST",
            "/v1/deployments",
            content=pack(app_dir),
            params={"dry_run": str(args.dry_run).lower(), "app": manifest.app},
            headers={"Content-Type": "application/gzip"},
        )
        .json()
    )
    if args.json:
        print_json(result)
    else:
        print_result(result)
    return 0


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
