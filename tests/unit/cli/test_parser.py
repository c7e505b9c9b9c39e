"""The argparse tree: global options anywhere, a help text on every argument, completion."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from ondo.cli.completion import _tree, bash_script, fish_script
from ondo.cli.main import parser, walk

LEAVES = [
    path
    for path, node in walk(parser())
    if path and not any(isinstance(a, argparse._SubParsersAction) for a in node._actions)
]


def test_the_documented_up_form_parses() -> None:
    args = parser().parse_args(["up", "--data-dir", "D", "--port", "18081"])
    assert (args.data_dir, args.port, args.command) == ("D", 18081, "up")


def test_global_options_before_the_command_still_work() -> None:
    args = parser().parse_args(["--data-dir", "D", "--url", "http://x", "up"])
    assert (args.data_dir, args.url) == ("D", "http://x")


@pytest.mark.parametrize("option", ["--url", "--token", "--data-dir"])
def test_every_command_takes_the_global_options_after_it(option: str) -> None:
    for path in LEAVES:
        argv = [*path, *_minimal_arguments(dict(walk(parser()))[path]), option, "VALUE"]
        args = parser().parse_args(argv)
        assert getattr(args, option.removeprefix("--").replace("-", "_")) == "VALUE", argv


def _minimal_arguments(node: argparse.ArgumentParser) -> list[str]:
    """Values for the positionals and required options of a command."""
    argv: list[str] = []
    for action in node._actions:
        value = str(next(iter(action.choices))) if action.choices else "1"
        if not action.option_strings and action.nargs in (None, "+"):  # "+": one value
            argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


def test_global_option_not_given_after_the_command_keeps_the_root_value() -> None:
    args = parser().parse_args(["--token", "T", "functions", "list"])
    assert args.token == "T"


def test_every_argument_says_what_it_is() -> None:
    missing = [
        (" ".join(path) or "ondo", action.dest)
        for path, node in walk(parser())
        for action in node._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_every_subcommand_has_a_help_line() -> None:
    missing = [
        (" ".join(path), choice.dest)
        for path, node in walk(parser())
        for action in node._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        if not choice.help
    ]
    assert missing == []


def _complete(words: list[str]) -> list[str]:
    script = bash_script(_tree(parser()))
    line = " ".join(f"'{w}'" for w in words)
    call = f'COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _ondo; echo "${{COMPREPLY[@]}}"'
    program = f"{script}\n{call}"
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_subcommands_and_options() -> None:
    assert {"up", "deploy", "functions", "clock", "completion"} <= set(_complete(["ondo", ""]))
    assert _complete(["ondo", "functions", ""])[:5] == [
        "list",
        "show",
        "versions",
        "rollback",
        "delete",
    ]
    assert _complete(["ondo", "--data-dir", "x", "functions", "ver"]) == ["versions"]
    assert "--json" in _complete(["ondo", "rules", "list", "--"])
    assert _complete(["ondo", "up", "--p"]) == ["--port"]


def test_fish_script_names_every_subcommand() -> None:
    script = fish_script(_tree(parser()))
    for path, _node in walk(parser()):
        if path:
            assert f"-a {path[-1]} " in script, path
