"""How audit entries name what a call acted on when its route said nothing more."""

from __future__ import annotations

import pytest

from ondo.api.permissions import action_of, default_resource


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("DELETE", "/v1/rules/bp-alert", "DELETE /v1/rules/{name}"),
        ("POST", "/v1/functions/hello/invoke", "POST /v1/functions/{name}/invoke"),
        ("GET", "/v1/rules", "GET /v1/rules"),
        ("POST", "/v1/rules/a/b/c", "POST /v1/rules/a/b/c"),  # no route: the path itself
        ("GET", "/x" * 300, "GET " + ("/x" * 300)[:200]),  # cut short
    ],
)
def test_a_refused_call_is_named_by_its_route(method: str, path: str, action: str) -> None:
    assert action_of(method, path) == action


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/v1/rules/bp-alert/disable", "rule:bp-alert"),
        ("/v1/functions/hello", "function:hello"),
        ("/v1/dlq/7", "dlq:7"),
        ("/v1/contacts/bob", "contact:bob"),
        ("/v1/deployments", "/v1/deployments"),
        ("/v1/unknown/thing", "/v1/unknown/thing"),
    ],
)
def test_an_entry_names_the_resource_in_its_path(path: str, resource: str) -> None:
    assert default_resource(path) == resource
