"""`ondo completion bash|zsh|fish`: a completion script generated from the argparse tree.

Usage: `source <(ondo completion bash)`, `source <(ondo completion zsh)` (through zsh's
bashcompinit), `ondo completion fish | source`. Commands and options complete; values do not.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

SHELLS = ("bash", "zsh", "fish")


def register(sub: Any) -> None:
    cmd = sub.add_parser("completion", help="print a shell completion script for ondo")
    cmd.add_argument(
        "shell",
        choices=SHELLS,
        help="the shell: bash, zsh or fish (e.g. `source <(ondo completion bash)`)",
    )
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ondo.cli.main import parser

    tree = _tree(parser())
    print({"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell](tree), end="")
    return 0


Tree = list[tuple[tuple[str, ...], list[tuple[str, str]], list[tuple[str, str]]]]


def _tree(root: argparse.ArgumentParser) -> Tree:
    """(command path, [(subcommand, help)], [(option, help)]) for every parser of the tree."""
    from ondo.cli.main import walk

    out: Tree = []
    for path, node in walk(root):
        children = [
            (choice.dest, choice.help or "")
            for action in node._actions
            if isinstance(action, argparse._SubParsersAction)
            for choice in action._choices_actions
        ]
        options = [
            (flag, action.help or "")
            for action in node._actions
            for flag in action.option_strings
            if flag.startswith("--")
        ]
        out.append((path, children, options))
    return out


def bash_script(tree: Tree) -> str:
    cases = []
    for path, children, options in tree:
        words = " ".join([name for name, _ in children] + [flag for flag, _ in options])
        cases.append(f"        {shlex.quote(' '.join(path))}) words={shlex.quote(words)} ;;")
    return _BASH.replace("@CASES@", "\n".join(cases))


_BASH = """# ondo completion for bash: source <(ondo completion bash)
_ondo_words() {
    local words=""
    case "$1" in
@CASES@
    esac
    printf '%s' "$words"
}

_ondo() {
    local cur="${COMP_WORDS[COMP_CWORD]}" path="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in -*) continue ;; esac
        if [[ " $(_ondo_words "$path") " == *" $word "* ]]; then
            path="${path:+$path }$word"
        fi
    done
    COMPREPLY=($(compgen -W "$(_ondo_words "$path")" -- "$cur"))
}
complete -o default -F _ondo ondo
"""


def zsh_script(tree: Tree) -> str:
    return (
        "# ondo completion for zsh: source <(ondo completion zsh)\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(tree)
    )


def fish_script(tree: Tree) -> str:
    lines = ["# ondo completion for fish: ondo completion fish | source", "complete -c ondo -f"]
    for path, children, options in tree:
        condition = _fish_condition(path)
        for name, text in children:
            lines.append(
                f"complete -c ondo -n {shlex.quote(condition)} -a {shlex.quote(name)}"
                f" -d {shlex.quote(text[:60])}"
            )
        for flag, text in options:
            lines.append(
                f"complete -c ondo -n {shlex.quote(condition)} -l {flag.removeprefix('--')}"
                f" -d {shlex.quote(text[:60])}"
            )
    return "\n".join(lines) + "\n"


def _fish_condition(path: tuple[str, ...]) -> str:
    if not path:
        return "__fish_use_subcommand"
    return "; and ".join(f"__fish_seen_subcommand_from {word}" for word in path)
