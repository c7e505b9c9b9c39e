"""`ondo`: the command line. Each command group is a module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence

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
    "ondo.cli.sources",
    "ondo.cli.contacts",
    "ondo.cli.secrets",
    "ondo.cli.grants",
    "ondo.cli.login",
    "ondo.cli.users",
    "ondo.cli.tokens",
    "ondo.cli.policies",
    "ondo.cli.clock",
    "ondo.cli.audit",
    "ondo.cli.completion",
]

# (flags, help): accepted before the command and after it (`ondo up --data-dir D`).
GLOBAL_OPTIONS: list[tuple[str, str, str]] = [
    ("--url", "URL", "platform URL (default: $ONDO_URL or http://127.0.0.1:8080)"),
    (
        "--token",
        "TOKEN",
        "bearer token (default: $ONDO_TOKEN, the `ondo login` of --url, or <data-dir>/admin.token)",
    ),
    (
        "--cacert",
        "FILE",
        "PEM certificate(s) to trust for an https URL, e.g. a self-signed platform's"
        " (default: $ONDO_CACERT, else the system's trust store)",
    ),
    (
        "--data-dir",
        "DIR",
        "where a local platform keeps its state and admin.token"
        " (default: $ONDO_DATA_DIR or ./.ondo)",
    ),
]


def _add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_argument_group("global options")
    for flag, metavar, text in GLOBAL_OPTIONS:
        dest = flag.removeprefix("--").replace("-", "_")
        group.add_argument(flag, dest=dest, metavar=metavar, default=default, help=text)


def subparsers_of(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The (name, parser) of each direct subcommand of `parser`, aliases left out."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield name, child


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree with its command path: (), ("functions",), ("functions", "list")…"""
    yield path, parser
    for name, child in subparsers_of(parser):
        yield from walk(child, (*path, name))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ondo", description="Self-hosted event-driven serverless.")
    root.add_argument("--version", action="version", version=f"ondo {__version__}")
    _add_global_options(root, None)
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for path, child in walk(root):
        if path:  # SUPPRESS: given after the command it wins; not given, the root's value stays
            _add_global_options(child, argparse.SUPPRESS)
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
