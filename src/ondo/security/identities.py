"""Users, service accounts, their tokens and policies: who may create, see and revoke what.

Every method takes the caller (`actor`) and the namespace the call acts in (already resolved by
security/tenancy.py, so a namespace's admin only ever reaches its own). Managing another
principal needs `Permission.USERS`; one's own tokens need only `Permission.SELF`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ondo.backends.store.repositories.policies import Policy, PolicyRepository
from ondo.backends.store.repositories.tokens import (
    ADMIN,
    ROLES,
    Principal,
    PrincipalKind,
    Role,
    TokenInfo,
    TokenRepository,
    User,
)
from ondo.errors import Conflict, Forbidden, NotFound, ValidationError
from ondo.security.policy import EVERYTHING, Permission, allows, require
from ondo.security.tenancy import new_principal
from ondo.security.tokens import IssuedToken, TokenStore

MAX_LABEL = 200
MAX_RESOURCE = 300
KINDS: tuple[PrincipalKind, ...] = ("user", "service")
# What a policy's resource pattern may name (besides `*`, the permission as a whole).
RESOURCE_KINDS = ("function", "type", "rule", "source", "contact", "group", "user")


@dataclass(frozen=True)
class TokenRequest:
    """What `issue` is asked for: whose token (empty: the caller's), its label and lifetime."""

    principal: str = ""
    label: str = ""
    expires_in_s: float | None = None


class Identities:
    """The rules of managing principals, over the token and policy repositories."""

    def __init__(
        self,
        tokens: TokenRepository,
        policies: PolicyRepository,
        store: TokenStore,
        clock: Callable[[], float],
    ) -> None:
        self.tokens = tokens
        self.policies = policies
        self.store = store
        self.clock = clock

    # --- users ------------------------------------------------------------------------------

    async def add_user(
        self, actor: Principal, namespace: str, name: str, role: str, kind: str
    ) -> tuple[User, IssuedToken]:
        """A new user or service account of `namespace`, and its first token (shown once)."""
        require(actor, Permission.USERS, "adding a user", f"user:{name}")
        principal = new_principal(name, namespace)
        checked_role, checked_kind = _role(role), _kind(kind)
        if await self.tokens.user(namespace, principal.name) is not None:
            raise Conflict(
                f"user {name!r} already exists in namespace {namespace!r}; give it another token"
                f" with `ondo tokens create --for {name}`, or remove it first"
                f" (`ondo users remove {name}`)"
            )
        now = self.clock()
        user = User(namespace, principal.name, checked_role, checked_kind, now, actor.name)
        await self.tokens.put_user(user)
        subject = Principal(user.name, namespace, user.role, user.kind)
        issued = await self.store.issue(subject, now, label="first token", created_by=actor.name)
        return user, issued

    async def users(self, actor: Principal, namespace: str) -> list[User]:
        require(actor, Permission.USERS, "listing users")
        return await self.tokens.users(namespace)

    async def set_role(self, actor: Principal, namespace: str, name: str, role: str) -> User:
        """Change a user's role; its live tokens carry the new role from their next call."""
        require(actor, Permission.USERS, "changing a user's role", f"user:{name}")
        user = await self.tokens.user(namespace, name)
        if user is None:
            raise NotFound(
                f"user {name[:80]!r} does not exist in namespace {namespace!r};"
                " see `ondo users list`"
            )
        changed = User(namespace, name, _role(role), user.kind, user.created_at, user.created_by)
        await self.tokens.put_user(changed)
        return changed

    async def remove_user(self, actor: Principal, namespace: str, name: str) -> int:
        """Remove a user, revoke its tokens and drop its policies; how many tokens were live."""
        require(actor, Permission.USERS, "removing a user", f"user:{name}")
        if await self.tokens.user(namespace, name) is None:
            raise NotFound(
                f"user {name[:80]!r} does not exist in namespace {namespace!r};"
                " see `ondo users list`"
            )
        revoked = await self.tokens.revoke_principal(namespace, name, self.clock())
        await self.policies.delete_principal(namespace, name)
        await self.tokens.delete_user(namespace, name)
        return revoked

    # --- tokens -----------------------------------------------------------------------------

    async def issue(self, actor: Principal, namespace: str, asked: TokenRequest) -> IssuedToken:
        """A token for the caller, or (with USERS) for another principal of `namespace`."""
        label = _label(asked.label)
        now = self.clock()
        expires_at = None if asked.expires_in_s is None else now + asked.expires_in_s
        subject = await self._token_subject(actor, namespace, asked.principal)
        return await self.store.issue(
            subject, now, label=label, created_by=actor.name, expires_at=expires_at
        )

    async def _token_subject(self, actor: Principal, namespace: str, name: str) -> Principal:
        if not name or (name == actor.name and namespace == actor.namespace):
            # Oneself: the same principal, without the token's own id, expiry or scope
            # (a scoped token could otherwise mint itself a wider one).
            if actor.scope:
                raise ValidationError(
                    "a scoped token (a function's) cannot issue tokens; ask an admin of the"
                    " namespace for a token (`ondo tokens create --for NAME`)"
                )
            return Principal(actor.name, actor.namespace, actor.role, actor.kind)
        require(actor, Permission.USERS, "issuing a token for another principal", f"user:{name}")
        user = await self.tokens.user(namespace, name)
        if user is not None:
            return Principal(user.name, namespace, user.role, user.kind)
        if not actor.is_admin:
            raise NotFound(
                f"user {name[:80]!r} does not exist in namespace {namespace!r}; add it first"
                f" (`ondo users add {name[:80]}`), which prints its first token"
            )
        # The platform admin may name a principal with no user row (as before users existed).
        return new_principal(name, namespace)

    async def token_list(self, actor: Principal, namespace: str) -> list[TokenInfo]:
        """The caller's own tokens; every token of `namespace` for a caller with USERS."""
        if allows(actor, Permission.USERS):
            return await self.tokens.listing(namespace, None)
        return await self.tokens.listing(namespace, actor.name)

    async def revoke(self, actor: Principal, namespace: str, token_id: str) -> TokenInfo:
        """Revoke a token of `namespace`: one's own, or any with USERS."""
        found = await self.tokens.token(namespace, token_id)
        if found is None:
            raise NotFound(
                f"token {token_id[:80]!r} does not exist in namespace {namespace!r};"
                " `ondo tokens list` shows the ids"
            )
        if found.principal == ADMIN and not actor.is_admin:
            # A namespace's admin manages its users, not the platform admin's token.
            raise Forbidden(
                f"token {token_id!r} is the platform admin's; only the platform admin revokes it"
            )
        if found.principal != actor.name:
            require(actor, Permission.USERS, "revoking another principal's token")
        revoked = await self.tokens.revoke(namespace, token_id, self.clock())
        if revoked is None:  # removed between the two reads
            raise NotFound(f"token {token_id[:80]!r} does not exist in namespace {namespace!r}")
        self.store.forget()  # this process at once; the others through the change feed
        return revoked

    # --- policies ---------------------------------------------------------------------------

    async def add_policy(
        self, actor: Principal, namespace: str, to: str, permission: str, resource: str
    ) -> Policy:
        require(actor, Permission.USERS, "adding a policy")
        checked = _permission(permission)
        pattern = _resource(resource)
        if to == ADMIN or not await self._exists(namespace, to):
            raise NotFound(
                f"principal {to[:80]!r} does not exist in namespace {namespace!r}; add it first"
                f" (`ondo users add {to[:80]}`)"
            )
        policy = Policy(
            "pol_" + secrets.token_hex(8),
            namespace,
            to,
            checked.value,
            pattern,
            self.clock(),
            actor.name,
        )
        await self.policies.add(policy)
        self.store.forget()
        return policy

    async def _exists(self, namespace: str, name: str) -> bool:
        """A user, or a principal the platform admin issued tokens to before users existed."""
        if await self.tokens.user(namespace, name) is not None:
            return True
        return bool(await self.tokens.listing(namespace, name))

    async def policy_list(self, actor: Principal, namespace: str) -> list[Policy]:
        require(actor, Permission.USERS, "listing policies")
        return await self.policies.listing(namespace, None)

    async def remove_policy(self, actor: Principal, namespace: str, policy_id: str) -> Policy:
        require(actor, Permission.USERS, "removing a policy")
        removed = await self.policies.delete(namespace, policy_id)
        if removed is None:
            raise NotFound(
                f"policy {policy_id[:80]!r} does not exist in namespace {namespace!r};"
                " `ondo policies list` shows the ids"
            )
        self.store.forget()
        return removed


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValidationError(f"role {role[:40]!r} is not known; use one of: {', '.join(ROLES)}")


def _kind(kind: str) -> PrincipalKind:
    for known in KINDS:
        if kind == known:
            return known
    raise ValidationError(f"kind {kind[:40]!r} is not known; use user or service")


def _label(label: str) -> str:
    if len(label) > MAX_LABEL or any(not c.isprintable() for c in label):
        raise ValidationError(f"'label' must be at most {MAX_LABEL} printable characters")
    return label


def _permission(name: str) -> Permission:
    allowed = [p.value for p in Permission if p is not Permission.PLATFORM]
    if name not in allowed:
        raise ValidationError(
            f"permission {name[:40]!r} cannot be granted; use one of: {', '.join(allowed)}"
        )
    return Permission(name)


def _resource(pattern: str) -> str:
    pattern = pattern or EVERYTHING
    if len(pattern) > MAX_RESOURCE or any(c.isspace() or not c.isprintable() for c in pattern):
        raise ValidationError(
            f"'resource' must be a pattern of at most {MAX_RESOURCE} characters without spaces,"
            " e.g. function:report* or type:orders.*"
        )
    kind = pattern.partition(":")[0]
    if pattern != EVERYTHING and (kind not in RESOURCE_KINDS or ":" not in pattern):
        raise ValidationError(
            f"resource {pattern[:80]!r} names no kind of resource; write KIND:PATTERN with KIND"
            f" one of {', '.join(RESOURCE_KINDS)} (e.g. function:report*), or * for all"
        )
    return pattern
