"""What roles and per-resource policies allow: a policy widens a role per resource (fnmatch
patterns), a resource-checked permission lets a call reach its route, others need `*`."""

from __future__ import annotations

import pytest

from ondo.backends.store.repositories.tokens import Principal
from ondo.errors import Forbidden, NotFound
from ondo.security.policy import (
    ROLE_PERMISSIONS,
    Permission,
    allows,
    allows_some,
    require,
    require_each,
)

P = Permission


def test_roles_allow_what_the_table_says() -> None:
    citizen = Principal("bob", "clinic", "citizen")
    assert allows(citizen, P.RULES) and allows(citizen, P.SELF)
    assert not allows(citizen, P.DEPLOY) and not allows(citizen, P.INVOKE, "function:x")
    operator = Principal("otto", "clinic", "operator")
    assert allows(operator, P.INVOKE, "function:any") and not allows(operator, P.RULES)
    assert P.PLATFORM not in ROLE_PERMISSIONS["admin"]
    assert allows(Principal("admin"), P.PLATFORM)


def test_a_policy_grants_one_permission_on_matching_resources_only() -> None:
    carol = Principal("carol", "shop", "citizen", policies=(("invoke", "function:report*"),))
    assert allows(carol, P.INVOKE, "function:report-daily")
    assert not allows(carol, P.INVOKE, "function:billing")
    assert not allows(carol, P.EMIT, "function:report-daily")  # another permission
    assert not allows(carol, P.INVOKE)  # not the permission as a whole
    assert allows_some(carol, P.INVOKE)  # enough to reach a route that checks its resource
    with pytest.raises(Forbidden, match="policies add --to carol --allow invoke"):
        require(carol, P.INVOKE, "POST /v1/functions/billing/invoke", "function:billing")


def test_a_policy_on_a_permission_routes_do_not_check_per_resource_needs_star() -> None:
    narrow = Principal("op", "shop", "operator", policies=(("users", "user:a*"),))
    assert not allows_some(narrow, P.USERS)  # USERS routes check no resource
    wide = Principal("op", "shop", "operator", policies=(("users", "*"),))
    assert allows_some(wide, P.USERS) and allows(wide, P.USERS)


def test_emitting_checks_every_event_type() -> None:
    cleo = Principal("cleo", "shop", "citizen", policies=(("emit", "type:orders.*"),))
    require_each(cleo, P.EMIT, "emitting", ["type:orders.new", "type:orders.paid"])
    with pytest.raises(Forbidden, match=r"type:payments\.new"):
        require_each(cleo, P.EMIT, "emitting", ["type:orders.new", "type:payments.new"])


def test_a_scope_narrows_policies_too() -> None:
    scoped = Principal(
        "fn", "shop", "developer", scope=("invoke:function:a",), policies=(("emit", "*"),)
    )
    assert allows(scoped, P.INVOKE, "function:a") and not allows(scoped, P.EMIT, "type:x")


def test_platform_routes_answer_404_to_everyone_else() -> None:
    with pytest.raises(NotFound):
        require(Principal("boss", "shop", "admin"), P.PLATFORM, "GET /v1/status")
