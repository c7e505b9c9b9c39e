"""Bounds on one event pattern, checked when it is compiled (never per event).

Patterns arrive from users (rules given as JSON, `where` conditions turned into patterns), so
everything that grows with a pattern is bounded: how deep it nests (the compiler recurses over
it), how many JSON values it holds, how many segments a field path has (finding a path's leaves
costs the square of its segments), and how many states it adds to the Matcher. An error names
the bound and its value. The rules' own bounds are in ondo.rules.limits; docs/rules.md lists all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ondo.errors import PatternTooLarge

MAX_PATTERN_DEPTH: Final = 40  # nested objects and lists in one pattern, $or branches included
MAX_PATTERN_SIZE: Final = 5_000  # JSON values (objects, lists, scalars) in one pattern
MAX_PATH_SEGMENTS: Final = 32  # dot-separated segments of one field path
MAX_ALTERNATIVES: Final = 1_000  # $or combinations one pattern may expand into
MAX_PATTERN_STATES: Final = 10_000  # field conditions over all alternatives: Matcher states added


def check_tree(value: Any, where: str) -> None:
    """PatternTooLarge when `value` (JSON-like) nests objects and lists deeper than
    MAX_PATTERN_DEPTH or holds more than MAX_PATTERN_SIZE values. Iterative, and stops at the first
    bound exceeded: safe to run on anything before the recursive compiler does."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    size = 0
    while stack:
        node, depth = stack.pop()
        size += 1
        if size > MAX_PATTERN_SIZE:
            raise PatternTooLarge(
                f"{where} holds more than {MAX_PATTERN_SIZE} values "
                f"(MAX_PATTERN_SIZE); split it into several rules"
            )
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > MAX_PATTERN_DEPTH:
            raise _too_deep(where)
        stack.extend((child, depth + 1) for child in children)


def check_path(path: str) -> None:
    """PatternTooLarge when a dotted field path has more than MAX_PATH_SEGMENTS segments."""
    segments = path.count(".") + 1
    if segments > MAX_PATH_SEGMENTS:
        shown = path if len(path) <= 60 else f"{path[:60]}…"
        raise PatternTooLarge(
            f"field path {shown!r} has {segments} segments; at most {MAX_PATH_SEGMENTS} "
            "(MAX_PATH_SEGMENTS) are allowed"
        )


def check_json_text(text: str | bytes, where: str, start: int = 0) -> None:
    """PatternTooLarge when the JSON value at `start` nests deeper than MAX_PATTERN_DEPTH.

    Run before json.loads, whose decoder recurses: counts brackets outside strings, iteratively,
    up to the end of that value."""
    chars = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(chars)):
        char = chars[index]
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_PATTERN_DEPTH:
                raise _too_deep(where)
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return


def _too_deep(where: str) -> PatternTooLarge:
    return PatternTooLarge(
        f"{where} nests objects and lists more than {MAX_PATTERN_DEPTH} levels deep "
        "(MAX_PATTERN_DEPTH); flatten it"
    )
