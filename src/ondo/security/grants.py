"""Giving, listing and revoking consent grants (security/consent.py says what they allow).

A grant is always given by its subject: the caller's own name is the subject, nobody grants for
someone else. Revoking one disables at once, in the same unit of work, the rules of the grantee
that name the subject (`about X`) and that no other live grant of X's covers; each owner is told
by an `ondo.rule.disabled` notice, and the audit log records each disabling.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ondo.backends.store.base import Repositories
from ondo.backends.store.repositories.grants import Grant
from ondo.backends.store.repositories.rules import StoredRule
from ondo.backends.store.repositories.tokens import Principal
from ondo.durations import parse_duration
from ondo.errors import DurationError, Forbidden, NotFound, ValidationError
from ondo.notices import RULE_DISABLED, Notices
from ondo.security.consent import Consents, NamespaceView, named_subjects, type_globs
from ondo.security.tenancy import PRINCIPAL_RE

MAX_TYPES = 32
MAX_FIELDS = 64
MAX_TEXT = 200  # one type glob or field path
MAX_PURPOSE = 500
_FIELD_RE = re.compile(r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9_.*:/-]+$")


@dataclass(frozen=True)
class GrantRequest:
    """What `POST /v1/grants` asks for, checked."""

    to: str
    types: tuple[str, ...]
    fields: tuple[str, ...] | None
    purpose: str
    expires_at: float | None


def parse_request(body: Any, now: float) -> GrantRequest:
    """The request body, checked; ValidationError naming the field otherwise."""
    allowed = {"to", "types", "expires", "purpose", "fields"}
    if not isinstance(body, dict) or set(body) - allowed:
        raise ValidationError(
            'body must be {"to": NAME, "types": ["health.*"], "expires": "30d" | DATE,'
            ' "purpose": TEXT, "fields": ["systolic"]} (only "to" and "types" are needed)'
        )
    to = body.get("to")
    if not isinstance(to, str) or not PRINCIPAL_RE.match(to):
        raise ValidationError("'to' must be the name of the user you allow (e.g. \"bob\")")
    purpose = body.get("purpose", "")
    if not isinstance(purpose, str) or len(purpose) > MAX_PURPOSE:
        raise ValidationError(f"'purpose' must be text of at most {MAX_PURPOSE} characters")
    types = _texts(body.get("types"), "types", MAX_TYPES, _TYPE_RE, "health.* or health.bp")
    if not types:
        raise ValidationError("'types' must name at least one event type or glob (health.*)")
    raw_fields = body.get("fields")
    fields = None
    if raw_fields is not None:
        fields = _texts(raw_fields, "fields", MAX_FIELDS, _FIELD_RE, "systolic or vitals.pulse")
    expires_at = expiry(body.get("expires"), now)
    return GrantRequest(to, types, fields, purpose, expires_at)


def _texts(
    value: Any, name: str, limit: int, form: re.Pattern[str], example: str
) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or len(value) > limit:
        raise ValidationError(f"'{name}' must be a list of at most {limit} entries")
    for item in value:
        if not isinstance(item, str) or len(item) > MAX_TEXT or not form.match(item):
            raise ValidationError(f"'{name}': {item!r} is not valid; write e.g. {example}")
    return tuple(dict.fromkeys(value))


def expiry(value: Any, now: float) -> float | None:
    """When a grant ends: a duration from now (`30d`), a date or time (`2027-01-31`,
    `2027-01-31T12:00:00Z`, UTC unless it says), or seconds since the epoch; None: no end."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = float(value)
    elif isinstance(value, str):
        at = _parse_time(value.strip(), now)
    else:
        raise ValidationError("'expires' must be a duration (30d), a date (2027-01-31) or a time")
    if not math.isfinite(at) or at <= now:
        raise ValidationError(f"'expires' ({value!r}) is not in the future")
    return at


def _parse_time(text: str, now: float) -> float:
    try:
        return now + parse_duration(text)
    except DurationError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"'expires' ({text!r}) is neither a duration such as 30d nor a date such as"
            " 2027-01-31 or 2027-01-31T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def new_grant_id() -> str:
    return "grt_" + secrets.token_hex(8)


class RuleCatalog(Protocol):
    """What revoking uses of the rule book (rules/definitions.py)."""

    async def disable_in(self, uow: Repositories, stored: StoredRule, reason: str) -> None: ...

    async def reload(self, namespace: str, name: str) -> StoredRule: ...


class Atomic(Protocol):
    """The store's unit of work."""

    async def atomic(self, body: Callable[[Repositories], Awaitable[Any]]) -> Any: ...

    @property
    def repos(self) -> Repositories: ...


Audit = Callable[..., Awaitable[Any]]  # AuditLog.record


@dataclass(frozen=True)
class Disabled:
    """A rule that a revocation disabled, and why."""

    rule: StoredRule
    reason: str


class GrantBook:
    """platform.grants: give, list and revoke; revoking disables the rules that depended."""

    def __init__(
        self,
        store: Atomic,
        consents: Consents,
        rules: RuleCatalog,
        notices: Notices,
        audit: Audit,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.consents = consents
        self.rules = rules
        self.notices = notices
        self.audit = audit
        self.clock = clock

    async def give(self, caller: Principal, namespace: str, request: GrantRequest) -> Grant:
        if caller.is_admin:
            raise Forbidden(
                "the platform admin is not a data subject: a grant is given by the person it is"
                " about, with their own token (ondo login, then ondo grants add)"
            )
        if request.to == caller.name:
            raise ValidationError(f"'to': {caller.name} needs no grant to use their own data")
        grant = Grant(
            id=new_grant_id(),
            namespace=namespace,
            subject=caller.name,
            grantee=request.to,
            types=request.types,
            fields=request.fields,
            purpose=request.purpose,
            created_at=self.clock(),
            expires_at=request.expires_at,
        )
        await self.store.repos.grants.add(grant)
        self.consents.forget(namespace)
        return grant

    async def listing(self, caller: Principal, namespace: str) -> list[Grant]:
        """An admin sees the namespace's grants; anyone else those it gave or holds."""
        repos = self.store.repos
        if is_admin(caller):
            return await repos.grants.in_namespace(namespace, revoked=True)
        return await repos.grants.of(namespace, caller.name)

    async def revoke(
        self, caller: Principal, namespace: str, grant_id: str
    ) -> tuple[Grant, list[Disabled]]:
        """Revoke the grant; returns it and the rules it disabled."""
        found = await self.store.repos.grants.get(namespace, grant_id)
        if found is None or not (is_admin(caller) or caller.name in (found.subject, found.grantee)):
            raise NotFound(
                f"grant {grant_id!r} does not exist in namespace {namespace!r}; see"
                " `ondo grants list`"
            )
        if not is_admin(caller) and caller.name != found.subject:
            raise Forbidden(
                f"grant {grant_id} was given by {found.subject}: only {found.subject} (or an"
                " admin of the namespace) may revoke it"
            )
        now = self.clock()

        async def body(uow: Repositories) -> tuple[Grant, list[Disabled]]:
            revoked = await uow.grants.revoke(namespace, grant_id, now)
            assert revoked is not None
            return revoked, await self._disable_dependents(uow, found, now)

        grant, disabled = await self.store.atomic(body)
        self.consents.forget(namespace)
        for item in disabled:
            await self._tell(caller, grant, item)
        return grant, disabled

    async def _disable_dependents(
        self, uow: Repositories, grant: Grant, now: float
    ) -> list[Disabled]:
        remaining = [
            g
            for g in await uow.grants.in_namespace(grant.namespace)
            if g.id != grant.id and g.subject == grant.subject and g.grantee == grant.grantee
        ]
        users = await uow.tokens.users(grant.namespace)
        view = NamespaceView({u.name: u.role for u in users}, remaining)
        disabled = []
        for stored in await uow.rules.in_namespace(grant.namespace):
            if not _depends(stored, grant, view, now):
                continue
            reason = (
                f"{grant.subject} revoked consent grant {grant.id} ({', '.join(grant.types)} to"
                f" {grant.grantee}); the rule is about {grant.subject} and may not run without"
                f" it; once {grant.subject} grants again, `ondo rules enable {stored.name}`"
            )
            await self.rules.disable_in(uow, stored, reason)
            disabled.append(Disabled(stored, reason))
        return disabled

    async def _tell(self, caller: Principal, grant: Grant, item: Disabled) -> None:
        """Reload the rule, tell its owner (an `ondo.rule.disabled` notice), audit it."""
        rule = item.rule
        await self.rules.reload(rule.namespace, rule.name)
        data = {"rule": rule.name, "owner": rule.owner, "reason": item.reason, "grant": grant.id}
        self.notices.publish(rule.namespace, RULE_DISABLED, rule.name, data)
        await self.audit(
            rule.namespace,
            caller.name,
            "rule.disabled",
            f"rule:{rule.name}",
            about=grant.subject,
            owner=rule.owner,
            grant=grant.id,
            reason=item.reason,
        )


def _depends(stored: StoredRule, grant: Grant, view: NamespaceView, now: float) -> bool:
    """Whether the enabled rule names the grant's subject, belongs to its grantee and is no
    longer covered by the subject's other grants."""
    if not stored.enabled or stored.owner != grant.grantee:
        return False
    pattern = stored.spec.get("pattern")
    if not isinstance(pattern, dict) or grant.subject not in named_subjects(pattern):
        return False
    return not view.covering(stored.owner, grant.subject, type_globs(pattern), now)


def is_admin(principal: Principal) -> bool:
    """The platform admin, or an admin of the principal's namespace."""
    return principal.is_admin or principal.role == "admin"
