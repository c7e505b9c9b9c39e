"""Rule definitions: parse and validate (nothing half-created), store, and keep compiled in memory.

`RuleBook.prepare` turns text or JSON into a `CompiledRule` and checks everything that can be
checked before storing: syntax (the parser's column and hint), the pattern, the condition, window
lengths, action kinds and their targets (functions must exist). Only a rule that passes is
written, in one transaction.

The compiled rules are a cache of the store's `rules` table. Every change (add, replace, delete,
enable, disable, a rule disabled because it failed) notifies the change feed's topic `rules` with
the rule id in its transaction; every process's book then reads that rule again from the store
(key `*`: every rule) and tells its engine, which updates its matcher. A process therefore sees
another's rule changes as soon as PostgreSQL delivers the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ondo.actions.model import Action
from ondo.backends.store import Repositories, Store
from ondo.backends.store.base import EVERYTHING
from ondo.backends.store.repositories.rules import StoredRule, rule_id
from ondo.clock import Clock
from ondo.errors import Conflict, NotFound, OndoError, RuleError, ValidationError
from ondo.functions.model import NAME_RE
from ondo.notices import RULE_CHANGED, Notices
from ondo.patterns import compile as compile_pattern
from ondo.patterns.compiler import parse_pattern
from ondo.rules.conditions import Condition
from ondo.rules.model import (
    CountWindow,
    RuleSpec,
    SustainWindow,
    parse_rule,
    rule_from_json,
    rule_to_json,
)

log = logging.getLogger("ondo.rules")

TOPIC = "rules"  # the change feed's topic: key = the rule id, or "*"
RETRY_S = 1.0  # a reload the store refused is tried again after this long

_MISSING = object()
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class CompiledRule:
    """A stored rule with its parsed spec and compiled condition, ready to evaluate."""

    stored: StoredRule
    spec: RuleSpec
    condition: Condition | None
    base_pattern: Mapping[str, Any] | None  # `for D` rules: events that may cancel the timer

    @property
    def rule_id(self) -> str:
        return self.stored.rule_id

    def holds(self, event: dict[str, Any]) -> tuple[bool, str]:
        """(condition true, why not) for an event that matched the pattern."""
        if self.condition is None:
            return True, ""
        if self.condition.evaluate(event):
            return True, ""
        return False, f"condition {self.spec.condition} is false"

    def key_of(self, per: str | None, event: dict[str, Any]) -> str:
        """The window key: the value of the `per FIELD` field ('' when there is no `per`)."""
        if not per:
            return ""
        value = field_value(event, per)
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    def sustain_key(self, event: dict[str, Any]) -> str:
        """`for D` timers run per `per FIELD` when given, else per (source, subject)."""
        per = self.spec.window.per if isinstance(self.spec.window, SustainWindow) else None
        if per:
            return self.key_of(per, event)
        return json.dumps([event.get("source"), event.get("subject")])


def field_value(event: dict[str, Any], path: str) -> Any:
    """`subject`, `data.user` or `user` (tried in data when not an attribute); None if absent."""
    parts = path.split(".")
    for root in (event, event.get("data")):
        current: Any = root
        for part in parts:
            if isinstance(current, dict) and part in current:
                current = current[part]
            else:
                current = _MISSING
                break
        if current is not _MISSING:
            return current
    return None


def derived_name(spec: RuleSpec, seed: str) -> str:
    """`insurance-claim-3f2a1c`: a slug of the event type plus a short hash of the rule."""
    types = spec.pattern.get("type") if isinstance(spec.pattern, dict) else None
    first = next((t for t in types if isinstance(t, str)), "") if isinstance(types, list) else ""
    slug = _SLUG_JUNK.sub("-", first.lower()).strip("-")[:40] or "rule"
    if not slug[0].isalpha():
        slug = "rule-" + slug
    return f"{slug}-{hashlib.sha256(seed.encode()).hexdigest()[:6]}"


def _base_pattern(spec: RuleSpec) -> Mapping[str, Any] | None:
    if not isinstance(spec.window, SustainWindow):
        return None
    return spec.base_pattern if spec.base_pattern is not None else spec.pattern


def _check_acts_on(spec: RuleSpec, action: Action, event_type: str | None, where: str) -> None:
    """An action that works on one event type only (bcc copies the mail a mail.received event
    announces) needs a rule whose pattern can match that type."""
    if event_type is None:
        return
    for alternative in parse_pattern(spec.pattern)[1]:
        if all(f.test(event_type) for f in alternative if f.path == "type"):
            return
    raise RuleError(
        f"{where}: `{action.kind} {action.target}` acts on {event_type} events only, and this"
        f" rule's pattern cannot match one; write `on {event_type} from SOURCE … do"
        f" {action.kind} …`"
    )


ChangeListener = Callable[[str, CompiledRule | None], None]


class RuleConsent(Protocol):
    """The data subjects' consent, as defining a rule checks it (security/consent.py)."""

    async def check_rule(
        self, namespace: str, owner: str, name: str, pattern: Mapping[str, Any]
    ) -> None:
        """Raise Forbidden when the rule names a subject whose consent its owner lacks."""
        ...


@dataclass(frozen=True)
class RuleChecks:
    """What defining a rule checks against other parts (platform.py wires them)."""

    function_exists: Callable[[str, str], bool]  # (name, namespace)
    validate_action: Callable[[Action, str], None]  # (action, namespace); raises why not
    # The one event type an action word can act on (bcc, forward: mail.received), or None.
    acts_on: Callable[[str], str | None] = lambda _word: None


class RuleBook:
    """Create, replace, delete, enable and disable rules; holds every stored rule compiled."""

    def __init__(
        self, store: Store, clock: Clock, checks: RuleChecks, on_change: ChangeListener
    ) -> None:
        self.store = store
        self.clock = clock
        self.checks = checks
        self._on_change = on_change
        self.notices = Notices()  # platform.py hands it the platform's hub
        self.consent: RuleConsent | None = None  # platform.py wires the subjects' consent
        self._stored: dict[str, StoredRule] = {}  # every row, loadable or not
        self._compiled: dict[str, CompiledRule] = {}
        self._lock = asyncio.Lock()  # one reader of the store into the cache at a time
        self._pending: set[str] = set()  # rule ids the change feed named, not reloaded yet
        self._reloader: asyncio.Task[None] | None = None
        self._detach: Callable[[], None] | None = None

    async def load(self) -> None:
        """Follow the change feed, then read every rule; a stored rule that cannot be loaded
        (e.g. stored by a version without today's bounds) is disabled, saying why."""
        if self._detach is None:
            self._detach = self.store.subscribe(TOPIC, self._heard)
        failed = await self._refresh_all()
        for rid, exc in failed.items():
            log.error("rule %s cannot be loaded and is disabled: %s", rid, exc)
            stored = self._stored[rid]
            if stored.enabled:
                await self._disable(stored, f"it cannot be loaded: {exc}")

    async def _disable(self, stored: StoredRule, reason: str) -> None:
        async def disable(uow: Repositories) -> None:
            await self.disable_in(uow, stored, reason)

        await self.store.atomic(disable)
        await self.reload(stored.namespace, stored.name)

    async def close(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None

    # --- the cache ---------------------------------------------------------------------------

    def compiled(self) -> list[CompiledRule]:
        return list(self._compiled.values())

    def compiled_rule(self, rid: str) -> CompiledRule | None:
        return self._compiled.get(rid)

    def stored_rule(self, namespace: str, name: str) -> StoredRule | None:
        """The rule as last read from the store (a cache kept by the change feed)."""
        return self._stored.get(rule_id(namespace, name))

    def stored_in(self, namespace: str) -> list[StoredRule]:
        """The namespace's rules by name, as last read from the store."""
        found = [r for r in self._stored.values() if r.namespace == namespace]
        return sorted(found, key=lambda r: r.name)

    def names_of_app(self, namespace: str, app: str) -> list[str]:
        return [r.name for r in self.stored_in(namespace) if r.app == app]

    def _heard(self, key: str) -> None:
        """The change feed: reload the rule (all of them for `*`) in the background."""
        self._pending.add(key)
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.get_running_loop().create_task(
                self._reload_pending(), name="ondo-rules-reload"
            )

    async def _reload_pending(self) -> None:
        while self._pending:
            key = EVERYTHING if EVERYTHING in self._pending else next(iter(self._pending))
            self._pending.discard(key)
            try:
                if key == EVERYTHING:
                    self._pending.clear()
                    await self._refresh_all()
                else:
                    await self._refresh(key)
            except OndoError:
                log.warning("reloading rule %s failed; trying again", key, exc_info=True)
                self._pending.add(key)
                await asyncio.sleep(RETRY_S)

    async def _refresh(self, rid: str, hint: CompiledRule | None = None) -> StoredRule | None:
        """Read one rule from the store into the cache (and the engine's matcher)."""
        namespace, _, name = rid.partition("/")
        async with self._lock:
            stored = await self.store.repos.rules.find(namespace, name)
            self._apply(rid, stored, hint)
        return stored

    async def _refresh_all(self) -> dict[str, OndoError]:
        """Read every rule; returns the ones that cannot be loaded, with why."""
        async with self._lock:
            rows = {r.rule_id: r for r in await self.store.repos.rules.all()}
            for rid in set(self._stored) - set(rows):
                self._apply(rid, None)
            failed = {}
            for rid, stored in rows.items():
                exc = self._apply(rid, stored)
                if exc is not None:
                    failed[rid] = exc
            return failed

    def _apply(
        self, rid: str, stored: StoredRule | None, hint: CompiledRule | None = None
    ) -> OndoError | None:
        if stored is None:
            self._stored.pop(rid, None)
            if self._compiled.pop(rid, None) is not None:
                self._on_change(rid, None)
            return None
        self._stored[rid] = stored
        current = self._compiled.get(rid)
        if current is not None and current.stored == stored:
            return None
        if current is not None and current.stored.same_definition(stored):
            compiled = replace(current, stored=stored)
        elif hint is not None and hint.stored.same_definition(stored):
            compiled = replace(hint, stored=stored)
        else:
            try:
                compiled = _load(stored)
            except OndoError as exc:
                if self._compiled.pop(rid, None) is not None:
                    self._on_change(rid, None)
                return exc
        self._compiled[rid] = compiled
        self._on_change(rid, compiled)
        return None

    # --- defining ----------------------------------------------------------------------------

    def prepare(
        self,
        namespace: str,
        owner: str,
        *,
        name: str | None = None,
        text: str | None = None,
        definition: dict[str, Any] | None = None,
        app: str | None = None,
        known_functions: Collection[str] = (),
        parsed: ParsedRule | None = None,
    ) -> CompiledRule:
        """Parse and validate without storing anything; raises RuleSyntaxError or RuleError.

        `parsed`: what parse_definition made of the same text or definition (the API parses
        off the event loop)."""
        parsed = parsed or parse_definition(text, definition)
        spec = parsed.spec
        seed = text if text is not None else json.dumps(definition, sort_keys=True)
        name = name or derived_name(spec, seed)
        if not NAME_RE.match(name):
            raise RuleError(
                f"rule name {name!r} is not valid: use lower-case letters, digits and '-',"
                " starting with a letter (at most 63 characters)"
            )
        self._validate(spec, name, namespace, known_functions)
        stored = StoredRule(namespace, name, owner, text or spec.text, rule_to_json(spec), app=app)
        return CompiledRule(stored, spec, parsed.condition, _base_pattern(spec))

    def _validate(
        self, spec: RuleSpec, name: str, namespace: str, known_functions: Collection[str]
    ) -> None:
        where = f"rule {name!r}"
        _check_windows(spec, where)
        try:
            compile_pattern(spec.pattern)
        except OndoError as exc:
            raise RuleError(f"{where}: invalid pattern: {exc}") from None
        if not spec.actions:
            raise RuleError(f"{where}: a rule needs at least one action after `do`")
        for action in spec.actions:
            if action.kind == "invoke" and action.target in known_functions:
                continue  # created by the same deploy, before the rules
            if action.kind == "invoke" and not self.checks.function_exists(
                action.target or "", namespace
            ):
                raise RuleError(
                    f"{where}: `invoke {action.target}`: there is no function {action.target!r}"
                    f" in namespace {namespace!r}; deploy it first (`ondo deploy`) or fix the name"
                )
            _check_acts_on(spec, action, self.checks.acts_on(action.kind), where)
            self.checks.validate_action(action, namespace)

    async def get(self, namespace: str, name: str) -> StoredRule:
        """The rule as stored now; NotFound names it."""
        found = await self.store.repos.rules.find(namespace, name)
        if found is None:
            raise _not_found(namespace, name)
        return found

    async def in_namespace(self, namespace: str) -> list[StoredRule]:
        """The namespace's rules as stored now, by name."""
        return await self.store.repos.rules.in_namespace(namespace)

    async def add(
        self, rule: CompiledRule, *, replace_existing: bool = False, take_over: bool = False
    ) -> StoredRule:
        """Store a prepared rule; refuses a name in use unless `replace_existing`, and a rule
        another principal owns unless `take_over` (it then becomes the new owner's)."""
        await self.check_consent(rule.stored)
        rid, now = rule.rule_id, self.clock.now()
        existed = rid in self._stored

        async def put(uow: Repositories) -> StoredRule:
            current = await uow.rules.find(*_split(rid))
            if current is not None and not replace_existing:
                raise Conflict(
                    f"rule {rule.stored.name!r} already exists in namespace"
                    f" {rule.stored.namespace!r}; delete it first or choose another --name"
                )
            if current is not None and current.owner != rule.stored.owner and not take_over:
                raise foreign_rule(current, rule.stored.owner)
            stored = await uow.rules.put(rule.stored, now)
            await uow.windows.forget_rule(rid)  # a new definition starts with empty windows
            await uow.notify(TOPIC, rid)
            return stored

        stored = await self.store.atomic(put)
        await self._refresh(rid, rule)
        self._announce(stored, "updated" if existed else "created")
        return stored

    async def delete(self, namespace: str, name: str) -> None:
        rid = rule_id(namespace, name)

        async def delete(uow: Repositories) -> None:
            if not await uow.rules.delete(namespace, name):
                raise _not_found(namespace, name)
            await uow.windows.forget_rule(rid)
            await uow.notify(TOPIC, rid)

        await self.store.atomic(delete)
        await self._refresh(rid)
        self.notices.publish(namespace, RULE_CHANGED, name, {"rule": name, "change": "deleted"})

    async def set_enabled(self, namespace: str, name: str, enabled: bool) -> StoredRule:
        """Enable or disable; a disabled rule's windows and timers are dropped (it sees nothing).

        Refuses to enable a stored rule that cannot be loaded (it would match nothing)."""
        stored = await self.get(namespace, name)
        if enabled and stored.rule_id not in self._compiled:
            _load(stored)  # raises why; a rule that loads was loaded at start
        if enabled:
            await self.check_consent(stored)
        if stored.enabled != enabled or stored.disabled_reason is not None:
            now = self.clock.now()

            async def switch(uow: Repositories) -> None:
                if not await uow.rules.set_enabled(namespace, name, enabled, now):
                    raise _not_found(namespace, name)
                await uow.windows.forget_rule(stored.rule_id)
                await uow.notify(TOPIC, stored.rule_id)

            await self.store.atomic(switch)
            self._announce(stored, "enabled" if enabled else "disabled")
        return await self.reload(namespace, name)

    async def check_consent(self, stored: StoredRule) -> None:
        """Refuse (Forbidden) a rule about a data subject who has not allowed its owner."""
        pattern = stored.spec.get("pattern")
        if self.consent is not None and isinstance(pattern, Mapping):
            await self.consent.check_rule(stored.namespace, stored.owner, stored.name, pattern)

    def _announce(self, stored: StoredRule, change: str) -> None:
        """`ondo.rule.changed` (a rule disabled because it failed is `ondo.rule.failed`)."""
        data = {"rule": stored.name, "change": change, "app": stored.app, "text": stored.text}
        self.notices.publish(stored.namespace, RULE_CHANGED, stored.name, data)

    async def disable_in(self, uow: Repositories, stored: StoredRule, reason: str) -> None:
        """Inside the caller's unit of work: disable a rule that failed, keeping why (shown by
        `ondo rules show`); the caller calls `reload` once it committed."""
        now = self.clock.now()
        await uow.rules.set_enabled(stored.namespace, stored.name, False, now, reason)
        await uow.windows.forget_rule(stored.rule_id)
        await uow.notify(TOPIC, stored.rule_id)

    async def reload(self, namespace: str, name: str) -> StoredRule:
        """Bring the compiled rule and the matcher in step with the stored row now."""
        stored = await self._refresh(rule_id(namespace, name))
        if stored is None:
            raise _not_found(namespace, name)
        return stored


def foreign_rule(current: StoredRule, caller: str) -> Conflict:
    """The error for replacing a rule that another principal wrote."""
    return Conflict(
        f"rule {current.name!r} of namespace {current.namespace!r} belongs to"
        f" {current.owner!r}, not {caller!r}; choose another name, ask {current.owner!r} to"
        " change it, or take it over (it becomes yours): `--take-over`"
    )


def _split(rid: str) -> tuple[str, str]:
    namespace, _, name = rid.partition("/")
    return namespace, name


def _not_found(namespace: str, name: str) -> NotFound:
    return NotFound(
        f"rule {name!r} does not exist in namespace {namespace!r}; see `ondo rules list`"
    )


@dataclass(frozen=True)
class ParsedRule:
    """A rule's spec and its compiled condition: the costly part of defining a rule."""

    spec: RuleSpec
    condition: Condition | None


def parse_definition(text: str | None, definition: dict[str, Any] | None) -> ParsedRule:
    """Parse rule text or its JSON definition and compile its condition. Pure (touches no
    store), so the API runs it on a worker thread; bounded by ondo.rules.limits."""
    if (text is None) == (definition is None):
        raise ValidationError("give a rule either as text or as its JSON definition")
    spec = parse_rule(text) if text is not None else rule_from_json(definition or {})
    return ParsedRule(spec, Condition(spec.condition) if spec.condition else None)


def _load(stored: StoredRule) -> CompiledRule:
    """A stored rule compiled again (at start, or when it is enabled)."""
    spec = rule_from_json(stored.spec)
    condition = Condition(spec.condition) if spec.condition else None
    return CompiledRule(stored, spec, condition, _base_pattern(spec))


def _check_windows(spec: RuleSpec, where: str) -> None:
    window, throttle = spec.window, spec.throttle
    if isinstance(window, CountWindow):
        if window.count < 1:
            raise RuleError(f"{where}: `{window.count} times` must count at least 1 event")
        if window.within_s <= 0:
            raise RuleError(f"{where}: `within` needs a positive duration such as 30d or 10m")
    if isinstance(window, SustainWindow) and window.for_s <= 0:
        raise RuleError(f"{where}: `for` needs a positive duration such as 10m")
    if throttle is not None and throttle.per_s <= 0:
        raise RuleError(f"{where}: `at most once per` needs a positive duration such as 1h")
