"""The data fields a rule's condition tests: what a default notification may name.

They are the `data.…` paths of the rule's pattern (the part of the condition the matcher does)
and those its residual CEL looks up (`highest["data.x"]`, `data.x`, `event.data.x`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ondo.rules.model import RuleSpec

_PATH_LOOKUP = re.compile(r"""\[\s*["'](data(?:\.[A-Za-z0-9_-]+)+)["']\s*\]""")
_DATA_ACCESS = re.compile(r"(?<![\w.])(?:event\.)?(data(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def condition_fields(spec: RuleSpec) -> tuple[str, ...]:
    """The rule's tested data fields, in the order they appear, each once."""
    found: list[str] = [".".join(p) for p in _paths(spec.pattern) if p and p[0] == "data"]
    if spec.condition:
        found += _PATH_LOOKUP.findall(spec.condition)
        found += _DATA_ACCESS.findall(_without_strings(spec.condition))
    return tuple(dict.fromkeys(found))


def _paths(pattern: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in pattern.items():
        if key == "$or" and isinstance(value, list):
            for branch in value:
                if isinstance(branch, Mapping):
                    paths.extend(_paths(branch, prefix))
        elif isinstance(value, Mapping):
            paths.extend(_paths(value, (*prefix, key)))
        else:
            paths.append((*prefix, key))
    return paths


def _without_strings(cel: str) -> str:
    """CEL with its string literals blanked, so `"data.x"` inside a string is not access."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', cel)
