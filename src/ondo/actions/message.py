"""What a notification says: the default sentence, or the rule's `saying "TEMPLATE"`.

A notification carries only what its template names, and the default message only the rule, the
event's type and subject and the fields the rule's condition tested. Placeholders are `{type}`,
`{subject}`, `{source}`, `{id}`, `{time}`, `{rule}` and `{data.PATH}` (`{{` and `}}` are
braces). A placeholder outside those is refused when the rule is defined; a data field the event
lacks cannot be known then, so it is written `[no data.PATH]` and reported as a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ondo.errors import RuleError

ATTRIBUTES: Final = ("type", "subject", "source", "id", "time", "rule")
MAX_VALUE_CHARS: Final = 200  # one value in a message; longer ones are cut with …
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
_MISSING = object()


def check_template(text: str, where: str) -> list[str]:
    """The fields a template names; RuleError for a placeholder it cannot fill."""
    names: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise RuleError(
                f"{where}: unmatched {token!r} at character {match.start() + 1};"
                f" write {token * 2!r} for a brace"
            )
        names.append(_check_name(match.group(1).strip(), where))
    return names


def _check_name(name: str, where: str) -> str:
    if name in ATTRIBUTES:
        return name
    path = name.split(".")
    if path[0] == "data" and all(_SEGMENT.match(part) for part in path[1:]):
        return name
    known = ", ".join(f"{{{a}}}" for a in ATTRIBUTES)
    raise RuleError(
        f"{where}: {{{name}}} is not a field an event has; use {known} or {{data.FIELD}}"
    )


def render(text: str, event: Mapping[str, Any], rule: str) -> tuple[str, list[str]]:
    """The template filled from the event, and a warning per field the event lacks."""
    warnings: list[str] = []

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = (match.group(1) or "").strip()
        value = rule if name == "rule" else lookup(event, name)
        if value is _MISSING or value is None:
            warnings.append(f"the event has no {name}")
            return f"[no {name}]"
        return as_text(value)

    return _TOKEN.sub(fill, text), warnings


def default_message(event: Mapping[str, Any], rule: str, fields: Sequence[str]) -> tuple[str, str]:
    """(title, body): what happened, in words, naming only the condition's fields."""
    kind = str(event.get("type") or "event")
    subject = event.get("subject")
    about = f" about {as_text(subject)}" if subject else ""
    said = []
    for path in fields:
        value = lookup(event, path)
        label = path.removeprefix("data.")
        said.append(f"{label} is {as_text(value)}" if value is not _MISSING else f"no {label}")
    detail = f": {', '.join(said)}" if said else ""
    return f"{rule}: {kind}{about}", f"Rule {rule} fired on a {kind} event{about}{detail}."


def lookup(event: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of the event's JSON form (list items by index)."""
    current: Any = event
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def as_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
