"""YAML loading that remembers where every value came from, so errors can name file:line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ondo.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """A parsed document plus the line (1-based) of every key path in it."""

    filename: str
    data: Any
    lines: dict[Path_, int]

    def where(self, path: Path_) -> str:
        """`ondo.yaml:12 (functions.resize.timeout)` for the deepest known prefix of `path`."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                break
        else:
            line = 1
        dotted = ".".join(str(p) for p in path) or "(top level)"
        return f"{self.filename}:{line} ({dotted})"

    def error(self, path: Path_, message: str) -> ConfigError:
        return ConfigError(f"{self.where(path)}: {message}")


def load(text: str, filename: str) -> Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}{line}: not valid YAML: {problem}") from None
    lines: dict[Path_, int] = {}
    data = _convert(root, (), lines, filename) if root is not None else None
    return Located(filename, data, lines)


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], filename: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader("").construct_object(key_node)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{filename}:{key_node.start_mark.line + 1}: keys must be text, got {key!r}"
                )
            if key in out:
                raise ConfigError(
                    f"{filename}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*path, key), lines, filename)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, filename) for i, item in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)
