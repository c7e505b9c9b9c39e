"""`functions.NAME.permissions` in ondo.yaml: what the function's own token may do.

    permissions:
      emit: [reading.checked, "alert.*"]      # event types (globs) it may POST /v1/events
      invoke: [report]                        # functions (globs) of its namespace it may invoke

Anything not listed is refused (403); without `permissions` the function gets no token at all.
"""

from __future__ import annotations

import re
from typing import Any

from ondo.deploy.yamlsrc import Located
from ondo.security.function_tokens import scope_of

PERMISSION_KEYS = ("emit", "invoke")
MAX_ENTRIES = 100  # per list: a policy is a handful of names, not a data set
# Event types and function names, with `*` and `?` wildcards; no `[`: fnmatch would read a set.
TYPE_GLOB_RE = re.compile(r"^[A-Za-z0-9._:/*?-]{1,200}$")
FUNCTION_GLOB_RE = re.compile(r"^[a-z*?][a-z0-9*?-]{0,62}$")
_WHAT = {
    "emit": ("event type", TYPE_GLOB_RE, 'e.g. "reading.checked" or "alert.*"'),
    "invoke": ("function name", FUNCTION_GLOB_RE, 'e.g. "report" or "report-*"'),
}

Path_ = tuple[str | int, ...]


def parse_permissions(doc: Located, path: Path_, value: Any) -> tuple[str, ...]:
    """The scope entries (`emit:type:GLOB`, `invoke:function:GLOB`) of a `permissions` value."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping such as {emit: [TYPE, ...], invoke: [NAME, ...]}")
    for key in value:
        if key not in PERMISSION_KEYS:
            raise doc.error(
                (*path, key), f"unknown key {key!r}; allowed here: {', '.join(PERMISSION_KEYS)}"
            )
    emit = _globs(doc, (*path, "emit"), value.get("emit"), "emit")
    invoke = _globs(doc, (*path, "invoke"), value.get("invoke"), "invoke")
    return scope_of(emit, invoke)


def _globs(doc: Located, path: Path_, value: Any, key: str) -> list[str]:
    what, pattern, example = _WHAT[key]
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise doc.error(path, f"must be a list of {what}s ({example}), got {value!r}")
    if len(value) > MAX_ENTRIES:
        raise doc.error(path, f"lists {len(value)} {what}s; at most {MAX_ENTRIES}")
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not pattern.match(item):
            raise doc.error(
                (*path, index),
                f"must be {_an(what)} or a glob of them ({example}; wildcards * and ?),"
                f" got {item!r}",
            )
        if item not in found:
            found.append(item)
    return found


def _an(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"
