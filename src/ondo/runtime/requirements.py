"""Check a requirements file (and what it includes) BEFORE anything is installed.

A dependency build sees only the app: a path, an include (-r/-c) or an editable install that
points outside the app directory is refused, and so are index options (--index-url,
--extra-index-url, --trusted-host, --find-links to anything but a directory of the app) and
direct URLs, unless the operator allows other indexes. Errors name the user's file and line and
never show anything of a file outside the app (such a file is never opened).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ondo.errors import UnsafeRequirements

MAX_FILES = 64
MAX_DEPTH = 8
MAX_FILE_BYTES = 1024 * 1024
INCLUDES = ("-r", "--requirement", "-c", "--constraint")
EDITABLE = ("-e", "--editable")
FIND_LINKS = ("-f", "--find-links")
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "--trusted-host")
FLAGS = ("--no-index", "--pre", "--prefer-binary", "--require-hashes")
VALUED = ("--only-binary", "--no-binary", "--hash", "--use-feature", "--config-settings", "-C")
ALLOW_HINT = "the operator can allow other indexes with ONDO_BUILD_ALLOW_INDEX_OPTIONS=1"
_COMMENT = re.compile(r"(^|\s+)#.*$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass
class Checked:
    """What the build needs to know: URLs of other indexes the operator allowed."""

    index_urls: list[str] = field(default_factory=list)
    files: int = 0


@dataclass(frozen=True)
class _Where:
    app_root: Path
    path: Path
    line: int

    def refuse(self, what: str, fix: str) -> UnsafeRequirements:
        shown = self.path.relative_to(self.app_root)
        return UnsafeRequirements(f"{shown}:{self.line}: {what}; {fix}")


def check_requirements(requirements: Path, app_root: Path, allow_index: bool) -> Checked:
    checked = Checked()
    _check_file(requirements.resolve(), app_root.resolve(), allow_index, checked, 0)
    return checked


def _check_file(path: Path, root: Path, allow_index: bool, checked: Checked, depth: int) -> None:
    checked.files += 1
    if checked.files > MAX_FILES or depth > MAX_DEPTH:
        raise UnsafeRequirements(
            f"{path.relative_to(root)}: more than {MAX_FILES} requirements files or includes "
            f"nested deeper than {MAX_DEPTH}; flatten the includes"
        )
    for number, line in _logical_lines(path, root):
        where = _Where(root, path, number)
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise where.refuse(f"cannot be read ({exc})", "fix the quoting") from None
        if tokens[0].startswith("-"):
            _check_options(tokens, where, allow_index, checked, depth)
        else:
            _check_requirement(tokens[0], line, where, allow_index)


def _logical_lines(path: Path, root: Path) -> list[tuple[int, str]]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnsafeRequirements(f"{path.relative_to(root)}: larger than 1 MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnsafeRequirements(f"{path.relative_to(root)}: cannot be read ({exc})") from None
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        start = start or number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        if line:
            lines.append((start, line))
        pending, start = "", 0
    return lines


def _split_option(tokens: list[str]) -> list[tuple[str, str | None]]:
    """[("--opt", value or None), ...] from `--opt value`, `--opt=value` or `-rvalue`."""
    pairs: list[tuple[str, str | None]] = []
    rest = list(tokens)
    while rest:
        token = rest.pop(0)
        name, eq, value = token.partition("=")
        if not eq and len(token) > 2 and token[1] != "-":
            name, value, eq = token[:2], token[2:], "="
        if eq:
            pairs.append((name, value))
        elif name in FLAGS or not rest:
            pairs.append((name, None))
        else:
            pairs.append((name, rest.pop(0)))
    return pairs


def _check_options(
    tokens: list[str], where: _Where, allow_index: bool, checked: Checked, depth: int
) -> None:
    for name, value in _split_option(tokens):
        if name in FLAGS or name in VALUED:
            continue
        if value is None:
            raise where.refuse(f"{name} needs a value", "write it as in pip's documentation")
        if name in INCLUDES:
            included = _inside(value, where, "an include")
            if not included.is_file():
                raise where.refuse(f"{name} {value}: no such file in the app", "fix the path")
            _check_file(included, where.app_root, allow_index, checked, depth + 1)
        elif name in EDITABLE:
            _check_location(value, where, allow_index)
        elif name in FIND_LINKS and not _URL.match(value):
            _inside(value, where, "--find-links")
        elif name in (*INDEX_OPTIONS, *FIND_LINKS):
            if not allow_index:
                raise where.refuse(
                    f"{name} is refused: dependencies come from the platform's package index",
                    f"remove the line ({ALLOW_HINT})",
                )
            checked.index_urls.append(value if _URL.match(value) else f"https://{value}")
        else:
            raise where.refuse(
                f"option {name} is not allowed in a requirements file here",
                "allowed: -r, -c, -e, --no-index, --pre, --prefer-binary, --only-binary, "
                "--no-binary, --hash, --require-hashes, --config-settings, --find-links ./dir",
            )


def _check_requirement(first: str, line: str, where: _Where, allow_index: bool) -> None:
    url = next((part for part in line.split() if _URL.match(part)), None)
    if url is not None:
        _check_location(url, where, allow_index)
    elif first.startswith((".", "/", "~")) or "/" in first:
        _inside(first, where, "a local package")


def _check_location(value: str, where: _Where, allow_index: bool) -> None:
    """An editable target or a direct reference: a path (inside the app) or a URL."""
    if value.lower().startswith("file:"):
        _inside(re.sub(r"^file:(//)?", "", value, flags=re.IGNORECASE), where, "a file: URL")
    elif _URL.match(value):
        if not allow_index:
            raise where.refuse(
                f"{value.split('#')[0][:200]} is downloaded from outside the package index",
                f"publish it to the index or vendor it into the app ({ALLOW_HINT})",
            )
    else:
        _inside(value, where, "a local package")


def _inside(value: str, where: _Where, what: str) -> Path:
    target = Path(value).expanduser() if value.startswith("~") else where.path.parent / value
    resolved = target.resolve()
    if not resolved.is_relative_to(where.app_root):
        raise where.refuse(
            f"{what} {value[:200]!r} points outside the app directory",
            "dependency builds see only the app: copy what it needs into the app directory",
        )
    return resolved
