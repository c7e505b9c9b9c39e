"""A `subject:` template: `{NAME}` is a parameter (an http route's path parameter, an MQTT
topic's field), `{body.PATH}` a field of the JSON body (`{payload.PATH}` of an MQTT message's
payload; dots go deeper), so that a rule can say `about bob` of a webhook's or a device's event.
Without such a template the sender's document never names the subject."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_SUBJECT = 1024  # characters of a rendered subject; a longer one is refused (400)


def template_problem(
    template: str, parameters: tuple[str, ...], document: str = "body", of: str = "the path"
) -> str | None:
    """Why `template` is not a subject template given these parameters (of `of`), whose
    `{DOCUMENT.FIELD}` names a field of the JSON `document`."""
    names = PLACEHOLDER.findall(template)
    if not names:
        return (
            f'must contain {{PARAMETER}} or {{{document}.FIELD}}, e.g. "{{user}}" or'
            f' "{{{document}.user}}"'
        )
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        return "has an unmatched brace"
    for name in names:
        if name.startswith(f"{document}."):
            if not all(name.split(".")[1:]):
                return (
                    f"{{{name}}}: a {document} field is written {document}.FIELD or {document}.A.B"
                )
        elif name not in parameters:
            known = ", ".join(parameters) or "none"
            return f"{{{name}}} is neither a parameter of {of} ({known}) nor {document}.FIELD"
    return None


def render_subject(
    template: str, parameters: Mapping[str, str], body: Any, document: str = "body"
) -> str:
    """The subject for one request or message (ValueError saying which field is missing or
    not text)."""
    prefix = f"{document}."

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith(prefix):
            return parameters[name]
        found = body
        field = name.removeprefix(prefix)
        for key in field.split("."):
            if not isinstance(found, dict) or key not in found:
                raise ValueError(f"the JSON {document} has no {field} field (the event's subject)")
            found = found[key]
        if isinstance(found, bool) or not isinstance(found, (str, int, float)) or found == "":
            raise ValueError(f"the {document}'s {field} must be text or a number (the subject)")
        return str(found)

    subject = PLACEHOLDER.sub(value, template)
    if len(subject) > MAX_SUBJECT:
        raise ValueError(f"the event's subject would be longer than {MAX_SUBJECT} characters")
    return subject
