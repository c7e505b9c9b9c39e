"""An `event:` route's `subject:` template: checked at deploy (the ondo.yaml field), rendered
per request from path parameters and JSON body fields, refused (400) when the body lacks one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.http import KIND, route_of
from ondo.sources.http_subject import MAX_SUBJECT, render_subject

AT = PlainWhere(Path("."), "sources.idp")


def validate(**route: Any) -> dict[str, Any]:
    stored: dict[str, Any] = KIND.validate({"routes": [route]}, AT)["routes"][0]
    return stored


def test_a_subject_template_is_kept_and_reaches_the_route() -> None:
    stored = validate(path="/claims/{person}", event="claim.filed", subject="{person}")
    assert stored == {
        "method": "ANY",
        "path": "/claims/{person}",
        "event": "claim.filed",
        "subject": "{person}",
        "auth": "token",
    }
    assert route_of(stored).subject == "{person}"
    assert route_of(validate(path="/login", event="auth.login")).subject is None


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"subject": "{user}"}, "routes.0.subject: subject applies to an `event:` route"),
        ({"event": "e", "subject": 7}, "routes.0.subject: subject must be a template"),
        ({"event": "e", "subject": "bob"}, "must contain {PARAMETER} or {body.FIELD}"),
        ({"event": "e", "subject": "{user}"}, "{user} is neither a parameter of the path (id)"),
        ({"event": "e", "subject": "{body.}"}, "a body field is written body.FIELD"),
        ({"event": "e", "subject": "{id}}"}, "has an unmatched brace"),
    ],
)
def test_bad_templates_name_the_field(route: dict[str, Any], message: str) -> None:
    settings = {"path": "/o/{id}", **route}
    if "event" not in settings:
        settings["function"] = "f"
    with pytest.raises(ConfigError) as caught:
        validate(**settings)
    assert message in str(caught.value)


def test_rendering_takes_path_parameters_and_body_fields() -> None:
    body = {"user": {"name": "bob", "id": 42}, "outcome": "success"}
    assert render_subject("{person}", {"person": "alice"}, None) == "alice"
    assert render_subject("{body.user.name}", {}, body) == "bob"
    assert render_subject("user/{body.user.id}/{kind}", {"kind": "login"}, body) == "user/42/login"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "the JSON body has no user.name field"),
        ("text", "the JSON body has no user.name field"),
        ({"user": {}}, "the JSON body has no user.name field"),
        ({"user": {"name": ["bob"]}}, "the body's user.name must be text or a number"),
        ({"user": {"name": True}}, "must be text or a number"),
        ({"user": {"name": ""}}, "must be text or a number"),
        ({"user": {"name": "b" * (MAX_SUBJECT + 1)}}, "longer than 1024 characters"),
    ],
)
def test_a_body_without_the_field_is_refused_saying_which(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_subject("{body.user.name}", {}, body)
