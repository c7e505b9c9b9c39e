"""An `event:` route's `subject:` template: `{NAME}` is a path parameter, `{body.PATH}` a field
of the JSON body (dots go deeper), so that a rule can say `about bob` of a webhook's event."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_SUBJECT = 1024  # characters of a rendered subject; a longer one is refused (400)


def template_problem(template: str, parameters: tuple[str, ...]) -> str | None:
    """Why `template` is not a subject template for a route with these path parameters."""
    names = PLACEHOLDER.findall(template)
    if not names:
        return 'must contain {PARAMETER} or {body.FIELD}, e.g. "{user}" or "{body.user}"'
    if "{" in PLACEHOLDER.sub("", template) or "}" in PLACEHOLDER.sub("", template):
        return "has an unmatched brace"
    for name in names:
        if name.startswith("body."):
            if not all(name.split(".")[1:]):
                return f"{{{name}}}: a body field is written body.FIELD or body.A.B"
        elif name not in parameters:
            known = ", ".join(parameters) or "none"
            return f"{{{name}}} is neither a parameter of the path ({known}) nor body.FIELD"
    return None


def render_subject(template: str, parameters: dict[str, str], body: Any) -> str:
    """The subject for one request (ValueError saying which field is missing or not text)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith("body."):
            return parameters[name]
        found = body
        for key in name.split(".")[1:]:
            if not isinstance(found, dict) or key not in found:
                raise ValueError(f"the JSON body has no {name[5:]} field (the event's subject)")
            found = found[key]
        if isinstance(found, bool) or not isinstance(found, (str, int, float)) or found == "":
            raise ValueError(f"the body's {name[5:]} must be text or a number (the subject)")
        return str(found)

    subject = PLACEHOLDER.sub(value, template)
    if len(subject) > MAX_SUBJECT:
        raise ValueError(f"the event's subject would be longer than {MAX_SUBJECT} characters")
    return subject
