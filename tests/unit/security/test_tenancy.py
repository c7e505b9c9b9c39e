from __future__ import annotations

import pytest

from ondo.errors import NotFound, ValidationError
from ondo.security.tenancy import new_principal, require_admin, resolve_namespace
from ondo.security.tokens import Principal

ADMIN = Principal("admin")
NURSE = Principal("nurse", "clinic")


def test_a_caller_that_names_no_namespace_acts_in_its_own() -> None:
    assert resolve_namespace(NURSE) == "clinic"
    assert resolve_namespace(NURSE, [""]) == "clinic"
    assert resolve_namespace(ADMIN) == "default"


def test_only_the_admin_may_name_another_namespace() -> None:
    assert resolve_namespace(ADMIN, ["clinic"]) == "clinic"
    assert resolve_namespace(NURSE, ["clinic"]) == "clinic"
    with pytest.raises(NotFound, match="namespace 'default' not found"):
        resolve_namespace(NURSE, ["default"])
    with pytest.raises(NotFound):  # an invalid name is as absent as any other
        resolve_namespace(NURSE, ["../x"])


def test_two_different_namespaces_in_one_request_are_refused() -> None:
    with pytest.raises(ValidationError, match="several namespaces"):
        resolve_namespace(ADMIN, ["a", "b"])
    assert resolve_namespace(ADMIN, ["a", "a"]) == "a"


def test_the_admin_names_only_valid_namespaces() -> None:
    for bad in ("Default", "a b", "x" * 64, "-a", "a/b"):
        with pytest.raises(ValidationError, match="not a valid name"):
            resolve_namespace(ADMIN, [bad])


def test_platform_wide_operations_are_the_admins() -> None:
    require_admin(ADMIN, "GET /v1/status")
    with pytest.raises(NotFound, match="GET /v1/status"):
        require_admin(NURSE, "GET /v1/status")


def test_tokens_are_never_issued_as_the_admin_or_to_bad_names() -> None:
    assert new_principal("nurse", "clinic") == NURSE
    for name, namespace in (("admin", "clinic"), ("", "clinic"), (3, "clinic"), ("n", "A")):
        with pytest.raises(ValidationError):
            new_principal(name, namespace)
