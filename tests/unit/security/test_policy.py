"""What a token may do: a function's token only what its `permissions` list, nothing else."""

from __future__ import annotations

import pytest

from ondo.errors import Forbidden, NotFound
from ondo.security.function_tokens import scope_of
from ondo.security.policy import ROLE_PERMISSIONS, Permission, allows, require, role_allows
from ondo.security.tokens import Principal

FUNCTION = Principal(
    "check", "clinic", "developer", "function", scope=scope_of(["reading.*"], ["report"])
)


def test_a_function_may_emit_only_the_listed_types_and_invoke_only_the_listed_functions() -> None:
    assert allows(FUNCTION, Permission.EMIT, "type:reading.checked")
    assert not allows(FUNCTION, Permission.EMIT, "type:alert.raised")
    assert not allows(FUNCTION, Permission.EMIT, "type:readingX")
    assert allows(FUNCTION, Permission.INVOKE, "function:report")
    assert not allows(FUNCTION, Permission.INVOKE, "function:report-2")
    assert not allows(FUNCTION, Permission.INVOKE, "function:check")  # not even itself


@pytest.mark.parametrize(
    "permission", [p for p in Permission if p not in (Permission.EMIT, Permission.INVOKE)]
)
def test_a_function_may_do_nothing_else(permission: Permission) -> None:
    assert not role_allows(FUNCTION, permission)
    assert not allows(FUNCTION, permission)
    raised = NotFound if permission is Permission.PLATFORM else Forbidden
    with pytest.raises(raised):
        require(FUNCTION, permission, "GET /v1/x")


def test_a_function_without_permissions_may_do_nothing_though_its_role_could() -> None:
    bare = Principal("f", "clinic", "developer", "function")
    assert Permission.READ in ROLE_PERMISSIONS["developer"]
    for permission in Permission:
        assert not role_allows(bare, permission) and not allows(bare, permission)
    user = Principal("dev", "clinic", "developer", "user")  # no scope: the role decides
    assert allows(user, Permission.READ) and allows(user, Permission.EMIT, "type:anything")


def test_the_refusal_tells_a_function_where_its_permissions_are_declared() -> None:
    with pytest.raises(Forbidden) as caught:
        require(FUNCTION, Permission.EMIT, "POST /v1/events", "type:alert.raised")
    message = str(caught.value)
    assert "'check'" in message and "type:alert.raised" in message
    assert "permissions:" in message and "emit:type:reading.*" in message
