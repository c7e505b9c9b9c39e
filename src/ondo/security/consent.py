"""Consent: the data subject decides whose rules may use events about it.

Events carry a `subject`; the user named X in a namespace is the data subject X. A rule owned by
O may act on an event about X only if O is X, O is an admin (the platform admin, or a user whose
role is `admin` in the namespace), or X gave O a live grant (not revoked, not expired) whose type
globs cover the event's type. That is checked when a rule naming X (`about X`) is created, and
each time any rule fires on an event about X (`Consents.at_firing`): a grant may have expired or
been revoked since. A subject that names no user of the namespace (a file name, a device) is
nobody ondo knows, and consent does not restrict rules about it.

The grants and the users' roles of each namespace are cached in memory (the rules engine asks on
every decision about a subject); the store's change feed (topics `grants` and `principals`)
empties a namespace's cache in every process. An event without a subject costs nothing here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ondo.backends.store.base import EVERYTHING, Repositories
from ondo.backends.store.repositories.grants import GRANTS_TOPIC, Grant
from ondo.backends.store.repositories.tokens import ADMIN, PRINCIPALS_TOPIC, Role
from ondo.errors import Forbidden

Subscribe = Callable[[str, Callable[[str], None]], Callable[[], None]]
NO_CONSENT = "no consent"  # the outcome of a decision that consent stopped


@dataclass(frozen=True)
class Verdict:
    """Whether a rule's owner may use an event about a subject, and by which grant."""

    allowed: bool
    grant: Grant | None = None
    why: str = ""


ALLOWED = Verdict(True)  # no grant needed: no subject, nobody known, the subject, or an admin


class NamespaceView:
    """A namespace's users' roles and live (unrevoked) grants, indexed for the hot path."""

    def __init__(self, roles: Mapping[str, Role], grants: Iterable[Grant]) -> None:
        self.roles = dict(roles)
        self.grants: dict[tuple[str, str], list[Grant]] = {}
        for grant in grants:
            if grant.revoked_at is None:
                self.grants.setdefault((grant.subject, grant.grantee), []).append(grant)
        for found in self.grants.values():
            # Unlimited fields first, then the newest: the grant that lets the most through.
            found.sort(key=lambda g: (g.fields is not None, -g.created_at))

    def exempt(self, owner: str, subject: str) -> bool:
        """True when no grant is needed: the owner is the subject or an admin, or the subject
        is nobody the namespace knows."""
        return (
            owner in (subject, ADMIN)
            or subject not in self.roles
            or self.roles.get(owner) == "admin"
        )

    def decide(self, owner: str, subject: str, event_type: str, now: float) -> Verdict:
        if self.exempt(owner, subject):
            return ALLOWED
        held = self.grants.get((subject, owner), ())
        for grant in held:
            if grant.live(now) and grant.covers_type(event_type):
                return Verdict(True, grant)
        return Verdict(False, why=_refusal(owner, subject, event_type, held, now))

    def covering(
        self, owner: str, subject: str, globs: Sequence[str], now: float, without: str = ""
    ) -> bool:
        """Whether the owner's live grants from the subject (but `without`) cover every glob."""
        if self.exempt(owner, subject):
            return True
        held = [g for g in self.grants.get((subject, owner), ()) if g.live(now) and g.id != without]
        return all(any(_glob_within(glob, g.types) for g in held) for glob in globs)


def _glob_within(glob: str, grant_types: Sequence[str]) -> bool:
    """Whether every type `glob` matches is matched by one of `grant_types` (the glob is read
    as text: `health.*` is within `health.*` and `*`, `health.bp` within `health.*`)."""
    return any(fnmatch.fnmatchcase(glob, allowed) for allowed in grant_types)


def _refusal(owner: str, subject: str, event_type: str, held: Sequence[Grant], now: float) -> str:
    past = [g for g in held if g.covers_type(event_type) and not g.live(now)]
    state = (
        f"its grant {past[0].id} to {owner} expired at {past[0].expires_at}"
        if past
        else f"it gave {owner} no live grant covering {event_type}"
    )
    return (
        f"no consent: the event is about {subject}, and {state}; {subject} can allow it with"
        f" `ondo grants add --to {owner} --types '{event_type}'`"
    )


# --- what a rule's pattern says about subjects and types ----------------------------------------


def type_globs(pattern: Mapping[str, Any]) -> list[str]:
    """The event types a rule's pattern can match, as globs (`*` when it does not say)."""
    found = pattern.get("type") if isinstance(pattern, Mapping) else None
    if not isinstance(found, list) or not found:
        return ["*"]
    return [_as_glob(matcher) for matcher in found]


def _as_glob(matcher: Any) -> str:
    if isinstance(matcher, str):
        return matcher
    if isinstance(matcher, Mapping) and len(matcher) == 1:
        (kind, value), *_ = matcher.items()
        if isinstance(value, str):
            if kind == "prefix":
                return value + "*"
            if kind == "suffix":
                return "*" + value
            if kind == "wildcard":
                return value.replace("\\\\", "\\")
    return "*"


def named_subjects(pattern: Mapping[str, Any]) -> list[str]:
    """The subjects a rule names exactly (`about alice or bob`); globs are checked at firing."""
    found = pattern.get("subject") if isinstance(pattern, Mapping) else None
    if not isinstance(found, list):
        return []
    return [s for s in found if isinstance(s, str)]


def redact(event: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The event with only `fields` of its data (`a` or `a.b` paths); binary data is dropped."""
    data = event.get("data")
    kept: dict[str, Any] = {}
    if isinstance(data, dict):
        for path in fields:
            _copy_path(data, kept, path.split("."))
    out = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
    out["data"] = kept
    return out


def _copy_path(source: dict[str, Any], target: dict[str, Any], parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if head not in source:
        return
    if not rest:
        target[head] = source[head]
    elif isinstance(source[head], dict):
        inner = target.setdefault(head, {})
        if isinstance(inner, dict):
            _copy_path(source[head], inner, rest)


# --- the service ----------------------------------------------------------------------------------


class ConsentStore(Protocol):
    """What consent reads: the store's repositories (autocommit, or the caller's unit of work)."""

    @property
    def repos(self) -> Repositories: ...


class Consents:
    """platform.consent: the per-namespace cache and the checks at rule creation and firing."""

    def __init__(self, store: ConsentStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._views: dict[str, NamespaceView] = {}
        self._generation = 0  # bumped by every change heard: a load that raced one is not kept
        self._detach: list[Callable[[], None]] = []

    def watch(self, subscribe: Subscribe) -> None:
        """Empty a namespace's cache when its grants or users change (in any process)."""
        self._detach = [
            subscribe(GRANTS_TOPIC, self.forget),
            subscribe(PRINCIPALS_TOPIC, self._heard_principal),
        ]

    def close(self) -> None:
        for detach in self._detach:
            detach()
        self._detach = []

    def forget(self, namespace: str) -> None:
        """Drop the cached view of `namespace` ("*": of every namespace)."""
        self._generation += 1
        if namespace == EVERYTHING:
            self._views.clear()
        else:
            self._views.pop(namespace, None)

    def _heard_principal(self, key: str) -> None:
        """Users are keyed `namespace/name`; a token's revocation (keyed by its id) changes no
        role, so it is not heard."""
        if key == EVERYTHING or "/" in key:
            self.forget(key.partition("/")[0] if key != EVERYTHING else key)

    def cached(self, namespace: str) -> NamespaceView | None:
        """The namespace's view if it is in memory (None: the next use reads it)."""
        return self._views.get(namespace)

    async def view(self, namespace: str, repos: Repositories | None = None) -> NamespaceView:
        """The namespace's view, from the cache or read through `repos` (the caller's unit of
        work; else the store's autocommit repositories)."""
        found = self._views.get(namespace)
        if found is not None:
            return found
        generation = self._generation
        repos = repos if repos is not None else self.store.repos
        users = await repos.tokens.users(namespace)
        grants = await repos.grants.in_namespace(namespace)
        view = NamespaceView({u.name: u.role for u in users}, grants)
        if generation == self._generation:
            self._views[namespace] = view
        return view

    async def at_firing(
        self,
        repos: Repositories,
        namespace: str,
        owner: str,
        subject: str,
        event_type: str,
        now: float,
    ) -> Verdict:
        """May `owner`'s rule act on this event about `subject` now? (The engine asks.)"""
        if owner in (ADMIN, subject):
            return ALLOWED
        view = self._views.get(namespace) or await self.view(namespace, repos)
        return view.decide(owner, subject, event_type, now)

    async def check_rule(
        self, namespace: str, owner: str, name: str, pattern: Mapping[str, Any]
    ) -> None:
        """Refuse (Forbidden) a rule naming a subject whose consent its owner lacks."""
        subjects = named_subjects(pattern)
        if not subjects or owner == ADMIN:
            return
        view = await self.view(namespace)
        globs = type_globs(pattern)
        now = self.clock()
        for subject in subjects:
            if not view.covering(owner, subject, globs, now):
                raise Forbidden(
                    f"rule {name!r} in namespace {namespace!r} is about {subject}, and {subject}"
                    f" has not allowed {owner} to use events of type {', '.join(globs)} about"
                    f" them; ask {subject} to run: ondo grants add --to {owner} --types"
                    f" {shell_types(globs)}"
                )


def shell_types(globs: Sequence[str]) -> str:
    """The `--types` argument for `ondo grants add`, quoted for a shell."""
    return "'" + ",".join(globs) + "'"
