"""How JSON leaf values compare in patterns: type-aware keys, number tests, display."""

from __future__ import annotations

import json
from typing import Any, Final


class _Sentinel:
    """A dict key for a JSON literal that must not collide with numbers (True == 1 in Python)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


TRUE_KEY: Final = _Sentinel("true")
FALSE_KEY: Final = _Sentinel("false")


def value_key(value: Any) -> Any:
    """Key under which a leaf value is looked up in a dict of exact values.

    Strings, numbers and null are their own keys (5 and 5.0 hash alike and compare equal, as
    EventBridge wants); booleans get sentinels because Python has True == 1.
    """
    if type(value) is bool:
        return TRUE_KEY if value else FALSE_KEY
    return value


def is_number(value: Any) -> bool:
    """True for JSON numbers (Python int or float, never bool)."""
    kind = type(value)
    return kind is int or kind is float


_SHOWN_DEPTH = 16  # nesting a message shows; json.dumps recurses, and deeper helps nobody
_SHOWN_CHARS = 200


def show(value: Any) -> str:
    """A value as it would appear in JSON, for messages (shortened when long or deep)."""
    if _deeper_than(value, _SHOWN_DEPTH):
        return f"a value nested more than {_SHOWN_DEPTH} levels deep"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth == limit:
                return True
            stack.extend((child, depth + 1) for child in _children(node))
    return False


def _children(node: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> Any:
    return node.values() if isinstance(node, dict) else node
