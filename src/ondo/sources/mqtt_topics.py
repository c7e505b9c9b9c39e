"""MQTT topic templates: `fitbit/{subject}/{type}` read, turned into a subscription filter
(`fitbit/+/+`), and matched against the topics messages arrive on.

A template is a topic filter whose levels may also be `{field}`: a whole level, captured by name.
`subject` becomes the event's subject, `type` its type (after the source's `type_prefix`), any
other field a CloudEvents extension attribute of the same name (`{room}` -> `$room` in rule
conditions). `+` and a final `#` keep their MQTT meaning and capture nothing.

Two templates of one source may not match the same topic: a broker may deliver such a message once
per matching subscription, and which template should name it would be a guess. Refusing overlaps
at deploy time makes every message map to exactly one template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FIELD_RE = re.compile(r"^\{([^{}]*)\}$")
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,19}$")  # a CloudEvents extension name
TOPIC_EXTENSION = "mqtttopic"  # the topic the message came on, on every event
# Names a field cannot take: the other CloudEvents attributes, and ondo's own extensions.
RESERVED_FIELDS = frozenset(
    {"id", "source", "specversion", "time", "datacontenttype", "dataschema", "data"}
    | {TOPIC_EXTENSION, "ondohops"}
)
MAX_TOPIC_BYTES = 65535  # MQTT's limit on a topic's UTF-8 length


class TemplateError(ValueError):
    """Raised when a topic template is malformed; the message says how to write it."""


@dataclass(frozen=True)
class TopicTemplate:
    template: str
    levels: tuple[str, ...]  # a literal level, "+", "#", or a field name in braces

    @classmethod
    def parse(cls, text: str) -> TopicTemplate:
        if not text:
            raise TemplateError("a topic cannot be empty")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES:
            raise TemplateError(f"a topic is at most {MAX_TOPIC_BYTES} bytes")
        if "\x00" in text:
            raise TemplateError("a topic cannot contain NUL")
        levels = tuple(text.split("/"))
        seen: set[str] = set()
        for index, level in enumerate(levels):
            _check_level(level, index == len(levels) - 1, seen)
        return cls(text, levels)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(level[1:-1] for level in self.levels if FIELD_RE.match(level))

    @property
    def filter(self) -> str:
        """The MQTT subscription filter: each field becomes `+`."""
        return "/".join("+" if FIELD_RE.match(level) else level for level in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """The fields' values when `topic` matches, else None."""
        parts = topic.split("/")
        found: dict[str, str] = {}
        for index, level in enumerate(self.levels):
            if level == "#":
                return found if not topic.startswith("$") or index > 0 else None
            if index >= len(parts):
                return None
            part = parts[index]
            if index == 0 and part.startswith("$") and level != part:
                return None  # wildcards never match $SYS-style topics (MQTT 4.7.2)
            if level == "+":
                continue
            field = FIELD_RE.match(level)
            if field:
                found[field.group(1)] = part
            elif level != part:
                return None
        return found if len(parts) == len(self.levels) else None


def _check_level(level: str, last: bool, seen: set[str]) -> None:
    if level == "#":
        if not last:
            raise TemplateError("`#` matches the rest of a topic, so it can only be the last level")
        return
    if level == "+":
        return
    field = FIELD_RE.match(level)
    if field:
        name = field.group(1)
        if not FIELD_NAME_RE.match(name):
            raise TemplateError(
                f"field {{{name}}}: a name is a lower-case letter then up to 19 lower-case"
                " letters or digits (it becomes a CloudEvents attribute)"
            )
        if name in RESERVED_FIELDS:
            raise TemplateError(
                f"field {{{name}}} would overwrite the event's own {name!r} attribute;"
                " name it differently"
            )
        if name in seen:
            raise TemplateError(f"field {{{name}}} appears twice; each field names one level")
        seen.add(name)
        return
    if any(c in level for c in "{}"):
        raise TemplateError(
            f"level {level!r}: a field is a whole topic level such as `{{subject}}`"
            " (write `a/{subject}/b`, not `a-{subject}`)"
        )
    if any(c in level for c in "+#"):
        raise TemplateError(
            f"level {level!r}: `+` and `#` are wildcards only as a whole level, such as `a/+/b`"
        )


def overlap(a: TopicTemplate, b: TopicTemplate) -> bool:
    """Whether some topic matches both templates' filters."""
    for index, (x, y) in enumerate(zip(a.levels, b.levels, strict=False)):
        wild_x, wild_y = _wild(x), _wild(y)
        if index == 0 and _dollar_against_wildcard(x, y):
            return False  # wildcards never match $SYS-style first levels (MQTT 4.7.2)
        if "#" in (x, y):
            return True
        if not (wild_x or wild_y or x == y):
            return False
    shorter, longer = sorted((a.levels, b.levels), key=len)
    # `a/#` also matches `a` itself: a longer filter whose extra level is `#`.
    return len(shorter) == len(longer) or (len(longer) == len(shorter) + 1 and longer[-1] == "#")


def _wild(level: str) -> bool:
    return level in ("+", "#") or FIELD_RE.match(level) is not None


def _dollar_against_wildcard(x: str, y: str) -> bool:
    return (x.startswith("$") and _wild(y)) or (y.startswith("$") and _wild(x))


@dataclass(frozen=True)
class Attributes:
    """What a message's topic says about its event."""

    type: str
    subject: str | None
    extensions: Mapping[str, str]


def attributes(
    fields: Mapping[str, str], topic: str, fixed_type: str | None, type_prefix: str
) -> Attributes:
    """The event's type, subject and extensions for a message on `topic` whose template
    captured `fields`; ValueError when a captured level is empty (nothing to name it by)."""
    empty = [name for name, value in fields.items() if not value]
    if empty:
        raise ValueError(f"its topic level for {{{empty[0]}}} is empty, so it names no {empty[0]}")
    extensions = {k: v for k, v in fields.items() if k not in ("subject", "type")}
    extensions[TOPIC_EXTENSION] = topic
    if "type" in fields:
        type_ = f"{type_prefix}.{fields['type']}" if type_prefix else fields["type"]
    else:
        type_ = fixed_type or DEFAULT_TYPE
    return Attributes(type_, fields.get("subject"), extensions)


DEFAULT_TYPE = "mqtt.message"
