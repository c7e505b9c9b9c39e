"""Every `ondo …` command that README.md and docs/*.md show works with the CLI as it is.

Command lines in code blocks run, block by block in one bash each, against a real platform with
the examples `make run` deploys (hello, iot, insurance, login), from a directory where
`.venv/bin/ondo` is this ondo; a failing line fails the test. Synopsis lines (`[…]`, `|`, `…`,
`<…>` or a PLACEHOLDER), `ondo up` and `--follow` lines, and commands quoted inline in the
prose are checked against the argparse tree instead: each command path exists, its `--help`
works, and every option shown is accepted.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ondo.cli.main import parser, subparsers_of
from tests.functional.platform import REPO, RunningPlatform

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\w+=\$\()?(?:\.venv/bin/)?ondo(?= |$)")
INLINE = re.compile(r"(?<!`)`((?:\.venv/bin/)?ondo [^`]+)`")
SYNOPSIS = re.compile(r"[\[\]|…<>]|\b[A-Z][A-Z_]+\b|(?:^|\s)(?:--follow|-f)\b|\bondo up\b")
FENCE = re.compile(r"^```")


@dataclass(frozen=True)
class Shown:
    """A command line a document shows: where, and the line as written."""

    where: str
    line: str


def code_blocks(path: Path) -> list[list[Shown]]:
    """The command lines of each fenced code block of `path` (prompts `$ ` removed)."""
    blocks: list[list[Shown]] = []
    current: list[Shown] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(raw.strip()):
            current = [] if current is None else None
            if current is not None:
                blocks.append(current)
            continue
        line = raw.strip().removeprefix("$ ")
        if current is not None and COMMAND.match(raw.strip()):
            current.append(Shown(f"{path.name}:{number}", line))
    return [block for block in blocks if block]


def inline_commands(path: Path) -> list[Shown]:
    """`ondo …` quoted in the prose, outside code blocks."""
    found: list[Shown] = []
    fenced = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(raw.strip()):
            fenced = not fenced
        elif not fenced:
            found += [Shown(f"{path.name}:{number}", m) for m in INLINE.findall(raw)]
    return found


def is_synopsis(line: str) -> bool:
    return bool(SYNOPSIS.search(_without_quoted(_without_comment(line))))


def _without_comment(line: str) -> str:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split, lexer.commenters = True, "#"
    with contextlib.suppress(ValueError):
        return " ".join(lexer)
    return line


def _without_quoted(line: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", line)


def check_synopsis(shown: Shown) -> None:
    """The command path exists, `--help` of each alternative works, every option is accepted."""
    words = _without_comment(shown.line).split()
    start = next(i for i, w in enumerate(words) if w.endswith("ondo")) + 1
    parts = [p.strip("[]") for w in words[start:] for p in w.split("|")]
    parts = [p for p in parts if p]
    node, path, rest = parser(), [], list(parts)
    while rest and rest[0] in ("--url", "--token", "--data-dir"):  # global options first
        del rest[:2]
    while rest and rest[0] in dict(subparsers_of(node)):
        node = dict(subparsers_of(node))[rest[0]]
        path.append(rest.pop(0))
    assert path, f"{shown.where}: `{shown.line}` names no ondo command"
    leaves = [path]
    if len(path) > 1:  # `rules list | show NAME | …`: the alternatives are siblings
        siblings = dict(subparsers_of(_node(path[:-1])))
        leaves += [[*path[:-1], p] for p in rest if p in siblings]
    for leaf in leaves:
        _assert_help(leaf, shown)
    options = {p.split("=")[0] for p in rest if p.startswith("-")}
    for option in options:
        assert any(option in _options(_node(leaf)) for leaf in leaves), (
            f"{shown.where}: `{shown.line}`: ondo {' '.join(path)} has no option {option}"
        )


def _node(path: list[str]) -> object:
    node = parser()
    for word in path:
        node = dict(subparsers_of(node))[word]
    return node


def _options(node: object) -> set[str]:
    return {flag for action in node._actions for flag in action.option_strings}  # type: ignore[attr-defined]


def _assert_help(path: list[str], shown: Shown) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        parser().parse_args([*path, "--help"])
    assert exited.value.code == 0 and "usage: ondo" in out.getvalue(), shown


def everything_shown() -> tuple[list[list[Shown]], list[Shown]]:
    """(blocks of lines to run, lines to check by parsing)."""
    runs: list[list[Shown]] = []
    parsed: list[Shown] = []
    for doc in DOCS:
        parsed += inline_commands(doc)
        for block in code_blocks(doc):
            parsed += [s for s in block if is_synopsis(s.line)]
            runnable = [s for s in block if not is_synopsis(s.line)]
            if runnable:
                runs.append(runnable)
    return runs, parsed


RUNS, PARSED = everything_shown()


@pytest.mark.parametrize("shown", PARSED, ids=[s.where for s in PARSED])
def test_synopsis_and_inline_commands_parse(shown: Shown) -> None:
    check_synopsis(shown)


def test_the_docs_show_commands_to_run_and_the_readme_quick_start_is_among_them() -> None:
    assert any(s.where.startswith("README.md") for block in RUNS for s in block)
    quick = [s.line for block in RUNS for s in block if s.where.startswith("README.md")]
    assert any(line.startswith(".venv/bin/ondo invoke hello") for line in quick)


@pytest.fixture(scope="module")
def docs_platform(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("docs")
    # What `make run` deploys, so that the commands README shows work as a newcomer runs them.
    apps = [REPO / "examples" / name for name in ("hello", "iot", "insurance", "login")]
    with RunningPlatform(root / "data", apps=apps) as running:
        yield running


@pytest.mark.parametrize("block", RUNS, ids=[b[0].where for b in RUNS])
def test_shown_commands_run(
    block: list[Shown], docs_platform: RunningPlatform, tmp_path: Path
) -> None:
    """The block's command lines in one bash, as a reader would paste them."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ondo").symlink_to(Path(sys.executable).parent / "ondo")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    script = "\n".join(
        f"{s.line} || {{ echo {shlex.quote(f'FAILED {s.where}: {s.line}')} >&2; exit 1; }}"
        for s in block
    )
    env = {k: v for k, v in docs_platform.env.items() if k != "ONDO_TOKEN"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{done.stderr}\n{done.stdout}"
