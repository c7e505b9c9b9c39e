"""YAML loading that remembers where every value came from, so errors can name file:line.

Manifests arrive from outside (`POST /v1/deployments`), so reading one is bounded: its size, its
nesting depth and the number of values once aliases are expanded (a few lines of nested aliases
otherwise expand to billions of values). Over a limit is a ConfigLimitExceeded naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ondo.errors import ConfigError, ConfigLimitExceeded

Path_ = tuple[str | int, ...]

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_NODES = 100_000  # values after aliases are expanded: a few thousand functions and rules
MAX_DEPTH = 64
MAX_INT_DIGITS = 1000
INT_TAG = "tag:yaml.org,2002:int"


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
    """Parse `text` within MAX_MANIFEST_BYTES, MAX_DEPTH and MAX_NODES (aliases expanded)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise ConfigLimitExceeded(
            f"{filename}: is {size} bytes; the limit is {MAX_MANIFEST_BYTES} bytes "
            "(manifest size limit)"
        )
    try:  # the reader refuses control characters as soon as it is made
        loader = _DepthBoundLoader(text, filename)
    except yaml.YAMLError as exc:
        raise _not_yaml(filename, exc) from None
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _not_yaml(filename, exc) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    data = _Converter(filename, lines, loader).convert(root, ()) if root is not None else None
    return Located(filename, data, lines)


def _not_yaml(filename: str, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(f"{filename}{line}: not valid YAML: {problem}")


class _DepthBoundLoader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_DEPTH: PyYAML composes recursively, and its
    scanner slows down with every open bracket, so deep nesting is refused as it is reached."""

    def __init__(self, text: str, filename: str) -> None:
        super().__init__(text)
        self.filename = filename
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _too_deep(self.filename, event.start_mark.line)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _too_deep(filename: str, line: int) -> ConfigLimitExceeded:
    return ConfigLimitExceeded(
        f"{filename}:{line + 1}: nested deeper than {MAX_DEPTH} levels (manifest depth limit)"
    )


class _Converter:
    """Node graph to plain data. Aliases share nodes, so the walk counts every node it expands
    (an alias bomb is refused, not expanded) and refuses an alias inside its own anchor."""

    def __init__(self, filename: str, lines: dict[Path_, int], loader: yaml.SafeLoader) -> None:
        self.filename = filename
        self.loader = loader  # constructs scalars (memoized per node: aliases cost nothing)
        self.lines = lines
        self.expanded = 0
        self.open: set[int] = set()  # ids of the nodes on the path being converted

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self._count(node, path)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self.open:
            raise ConfigError(
                f"{self.filename}:{node.start_mark.line + 1}: an alias refers to the node that "
                "contains it (a self-referencing alias); YAML for ondo must be a tree"
            )
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _count(self, node: yaml.Node, path: Path_) -> None:
        self.expanded += 1
        if self.expanded > MAX_NODES:
            raise ConfigLimitExceeded(
                f"{self.filename}:{node.start_mark.line + 1}: more than {MAX_NODES} values once "
                "aliases are expanded (manifest alias expansion limit); use fewer aliases"
            )
        if len(path) > MAX_DEPTH:
            raise _too_deep(self.filename, node.start_mark.line)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = repr(key) if key is not None else "a list or mapping"
                raise ConfigError(f"{self.filename}:{line}: keys must be text, got {shown}")
            if key in out:
                raise ConfigError(f"{self.filename}:{line}: duplicate key {key!r}")
            self.lines[(*path, key)] = line
            out[key] = self.convert(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        line = node.start_mark.line + 1
        if node.tag == INT_TAG and sum(c.isdigit() for c in node.value) > MAX_INT_DIGITS:
            raise ConfigLimitExceeded(
                f"{self.filename}:{line}: a number of more than {MAX_INT_DIGITS} digits "
                "(manifest number limit); quote it to make it text"
            )
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            raise ConfigError(f"{self.filename}:{line}: not a valid value: {exc}") from None
