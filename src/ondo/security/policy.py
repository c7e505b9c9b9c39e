"""What each role may do, and the one check every way into the platform asks.

A permission is checked in the caller's namespace, after `tenancy.resolve_namespace` has put the
call there; nothing here lets a call cross namespaces. Per-resource grants of a permission
(`policies`, e.g. "carol may invoke function report") widen a role here and nowhere else.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from ondo.backends.store.repositories.tokens import Principal, Role
from ondo.errors import Forbidden, NotFound


class Permission(StrEnum):
    """What a call does. Each API route needs exactly one (api/permissions.py)."""

    READ = "read"  # list and show functions, rules, sources, contacts, events, records, traces
    DEPLOY = "deploy"  # deploy an app, delete or roll back a function, change contacts
    INVOKE = "invoke"  # invoke a function (resource: function:NAME)
    EMIT = "emit"  # post events (resource: type:TYPE)
    RULES = "rules"  # create, delete, enable or disable rules
    OPERATE = "operate"  # retry or drop dead letters, replay events
    SECRETS = "secrets"  # set and delete secrets (their values are never read back)
    USERS = "users"  # add and remove users, issue and revoke tokens, grant policies
    CONSENT = "consent"  # grant, list and revoke consent about oneself
    SELF = "self"  # who am I, my own tokens, my own audit trail
    PLATFORM = "platform"  # platform-wide: status, the action queue, the manual clock


_EVERYONE: Final = frozenset({Permission.CONSENT, Permission.SELF})
ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    # A namespace's admin: everything in its namespace, nothing platform-wide.
    "admin": frozenset(Permission) - {Permission.PLATFORM},
    "developer": _EVERYONE
    | {
        Permission.READ,
        Permission.DEPLOY,
        Permission.INVOKE,
        Permission.EMIT,
        Permission.RULES,
        Permission.OPERATE,
        Permission.SECRETS,
    },
    "operator": _EVERYONE | {Permission.READ, Permission.INVOKE, Permission.OPERATE},
    # A data subject: consents about itself, writes rules about itself, reads its own trail.
    "citizen": _EVERYONE | {Permission.RULES},
}


# Permissions whose routes check each resource they act on (api/permissions.py): a policy that
# grants one of them on some resources lets a call reach the route, which then checks each
# resource (function:NAME, type:TYPE, rule:NAME, …). A policy of any other permission counts
# only when its pattern covers everything (`*`): those routes have no resource to check.
RESOURCE_CHECKED: Final = frozenset(
    {Permission.INVOKE, Permission.EMIT, Permission.DEPLOY, Permission.RULES}
)
EVERYTHING: Final = "*"


def role_allows(principal: Principal, permission: Permission) -> bool:
    """Whether `principal` may do `permission` on some resource: by its role or by a policy
    (narrowed by its token's scope); `allows` decides for one resource."""
    if principal.is_admin:
        return True
    if _scoped(principal) and not any(_scope_names(entry, permission) for entry in principal.scope):
        return False
    if permission in ROLE_PERMISSIONS[principal.role]:
        return True
    return bool(principal.policies) and permission in _policy_index(principal.policies)


def allows(principal: Principal, permission: Permission, resource: str = "") -> bool:
    """Whether `principal` may do `permission` to `resource` (`function:NAME`, `type:TYPE`;
    empty: the permission as a whole) by its role or a policy, within its token's scope."""
    if principal.is_admin:
        return True
    if _scoped(principal) and not any(
        _scope_covers(entry, permission, resource) for entry in principal.scope
    ):
        return False
    if permission in ROLE_PERMISSIONS[principal.role]:
        return True
    if not principal.policies:
        return False
    matcher = _policy_index(principal.policies).get(permission)
    return matcher is not None and matcher.match(resource) is not None


@functools.lru_cache(maxsize=4096)
def _policy_index(policies: tuple[tuple[str, str], ...]) -> Mapping[str, re.Pattern[str]]:
    """A principal's policies as one regular expression per permission (its patterns'
    alternation): one match per check, however many policies; built once per set of policies
    (fnmatch per pattern cost ~2 µs each on every call)."""
    by_permission: dict[str, list[str]] = {}
    for permission, pattern in policies:
        by_permission.setdefault(permission, []).append(fnmatch.translate(pattern))
    return {
        permission: re.compile("|".join(f"(?:{part})" for part in parts))
        for permission, parts in by_permission.items()
    }


def allows_some(principal: Principal, permission: Permission) -> bool:
    """What the guard asks of a route that checks its resources itself: the permission by role,
    or by a policy on some resource when the permission is one of RESOURCE_CHECKED."""
    if permission in RESOURCE_CHECKED:
        return role_allows(principal, permission)
    return allows(principal, permission)


def require(
    principal: Principal,
    permission: Permission,
    what: str,
    resource: str = "",
    *,
    some: bool = False,
) -> None:
    """Refuse the call unless `principal` may do it (`some`: on some resource, see
    `allows_some`). Platform-wide calls are answered 404 (as if absent, so a tenant cannot even
    learn of them); anything else 403, naming what is missing."""
    if allows_some(principal, permission) if some else allows(principal, permission, resource):
        return
    if permission is Permission.PLATFORM:
        raise NotFound(f"{what} is not available to this token (it is the admin's)")
    target = f" on {resource}" if resource else ""
    if principal.kind == "function":
        raise Forbidden(
            f"{what}: function {principal.name!r} may not {permission.value}{target}; its token"
            " allows only what `permissions:` of the function in ondo.yaml lists"
            f" ({', '.join(principal.scope) or 'nothing'})"
        )
    grant = f"ondo policies add --to {principal.name} --allow {permission.value}"
    grant += f" --resource {resource}" if resource else ""
    raise Forbidden(
        f"{what}: {principal.name!r} (role {principal.role}) may not {permission.value}{target}"
        f" in namespace {principal.namespace!r}; an admin of the namespace can grant it"
        f" ({grant})"
    )


def _scoped(principal: Principal) -> bool:
    """Whether the token's scope limits it: a function's always does (an empty scope allows
    nothing), anyone else's only when it has one."""
    return bool(principal.scope) or principal.kind == "function"


def require_each(
    principal: Principal, permission: Permission, what: str, resources: Iterable[str]
) -> None:
    """`require` for every resource a call acts on (each deployed function, rule, source…),
    each asked once. Always per resource: a token's scope may allow some resources only."""
    for resource in dict.fromkeys(resources):
        require(principal, permission, what, resource)


def _scope_names(entry: str, permission: Permission) -> bool:
    return entry.partition(":")[0] == permission.value


def _scope_covers(entry: str, permission: Permission, resource: str) -> bool:
    name, _, pattern = entry.partition(":")
    if name != permission.value:
        return False
    if not pattern or not resource:
        return True
    return fnmatch.fnmatchcase(resource, pattern)
