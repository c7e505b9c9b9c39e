"""`ondo`: the command line. Each command group is a module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ondo import __version__
from ondo.errors import OndoError

COMMAND_MODULES = [
    "ondo.cli.up",
    "ondo.cli.deploy",
    "ondo.cli.functions",
    "ondo.cli.invoke",
    "ondo.cli.events",
    "ondo.cli.dlq",
    "ondo.cli.rules",
]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ondo", description="Self-hosted event-driven serverless.")
    root.add_argument("--version", action="version", version=f"ondo {__version__}")
    root.add_argument("--url", help="platform URL (default: $ONDO_URL or http://127.0.0.1:8080)")
    root.add_argument(
        "--token", help="bearer token (default: $ONDO_TOKEN or <data-dir>/admin.token)"
    )
    root.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help="where a local platform keeps its state (default: $ONDO_DATA_DIR or ./.ondo)",
    )
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except OndoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
