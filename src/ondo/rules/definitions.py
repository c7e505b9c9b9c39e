"""Rule definitions: parse and validate (nothing half-created), store, and keep compiled in memory.

`RuleBook.prepare` turns text or JSON into a `CompiledRule` and checks everything that can be
checked before storing: syntax (the parser's column and hint), the pattern, the condition, window
lengths, action kinds and their targets (functions must exist). Only a rule that passes is
written, in one transaction; the engine is told so it can update its matcher.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ondo.actions.base import validate_action
from ondo.backends.store.repositories.rules import StoredRule
from ondo.errors import Conflict, OndoError, RuleError, ValidationError
from ondo.functions.model import NAME_RE
from ondo.patterns import compile as compile_pattern
from ondo.rules.conditions import Condition
from ondo.rules.model import (
    CountWindow,
    RuleSpec,
    SustainWindow,
    parse_rule,
    rule_from_json,
    rule_to_json,
)
from ondo.rules.registry import RuleRegistry

if TYPE_CHECKING:
    from ondo.platform import Platform

log = logging.getLogger("ondo.rules")

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


ChangeListener = Callable[[str, CompiledRule | None], None]
ForgetListener = Callable[[sqlite3.Connection, str], None]


class RuleBook:
    """Create, replace, delete, enable and disable rules; holds every stored rule compiled."""

    def __init__(
        self, platform: Platform, on_change: ChangeListener, on_forget: ForgetListener
    ) -> None:
        self.platform = platform
        self.registry = RuleRegistry(platform.db)
        self._on_change = on_change
        self._on_forget = on_forget
        self._compiled: dict[str, CompiledRule] = {}
        for stored in self.registry.all():
            try:
                self._compiled[stored.rule_id] = _load(stored)
            except OndoError as exc:  # e.g. stored by a version without today's bounds
                log.error("rule %s cannot be loaded and is disabled: %s", stored.rule_id, exc)
                if stored.enabled:
                    with platform.db.transaction() as conn:
                        self.disable_in(conn, stored, f"it cannot be loaded: {exc}")

    def compiled(self) -> list[CompiledRule]:
        return list(self._compiled.values())

    def compiled_rule(self, rid: str) -> CompiledRule | None:
        return self._compiled.get(rid)

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
            if action.kind == "invoke" and not self.platform.functions.exists(
                action.target or "", namespace
            ):
                raise RuleError(
                    f"{where}: `invoke {action.target}`: there is no function {action.target!r}"
                    f" in namespace {namespace!r}; deploy it first (`ondo deploy`) or fix the name"
                )
            validate_action(action, self.platform, namespace)

    def add(self, rule: CompiledRule, *, replace_existing: bool = False) -> StoredRule:
        """Store a prepared rule; refuses a name in use unless `replace_existing`."""
        rid = rule.rule_id
        old = self._compiled.get(rid) or _stored_only(self.registry, rule.stored)
        if old is not None and not replace_existing:
            raise Conflict(
                f"rule {rule.stored.name!r} already exists in namespace"
                f" {rule.stored.namespace!r}; delete it first or choose another --name"
            )
        now = self.platform.clock.now()
        with self.platform.db.transaction() as conn:
            stored = self.registry.put(conn, rule.stored, now)
            self._on_forget(conn, rid)  # a new definition starts with empty windows
        compiled = replace(rule, stored=stored)
        self._compiled[rid] = compiled
        self._on_change(rid, compiled)
        return stored

    def delete(self, namespace: str, name: str) -> None:
        stored = self.registry.get(namespace, name)
        with self.platform.db.transaction() as conn:
            self.registry.delete(conn, namespace, name)
            self._on_forget(conn, stored.rule_id)
        self._compiled.pop(stored.rule_id, None)
        self._on_change(stored.rule_id, None)

    def set_enabled(self, namespace: str, name: str, enabled: bool) -> StoredRule:
        """Enable or disable; a disabled rule's windows and timers are dropped (it sees nothing).

        Refuses to enable a stored rule that cannot be loaded (it would match nothing)."""
        stored = self.registry.get(namespace, name)
        if enabled and stored.rule_id not in self._compiled:
            _load(stored)  # raises why; a rule that loads was loaded at start
        if stored.enabled != enabled or stored.disabled_reason is not None:
            with self.platform.db.transaction() as conn:
                self.registry.set_enabled(conn, namespace, name, enabled, self.platform.clock.now())
                self._on_forget(conn, stored.rule_id)
        return self.reload(namespace, name)

    def disable_in(self, conn: sqlite3.Connection, stored: StoredRule, reason: str) -> None:
        """Inside the caller's transaction: disable a rule that failed, keeping why (shown by
        `ondo rules show`); the caller calls `reload` once it committed."""
        now = self.platform.clock.now()
        self.registry.set_enabled(conn, stored.namespace, stored.name, False, now, reason)
        self._on_forget(conn, stored.rule_id)

    def reload(self, namespace: str, name: str) -> StoredRule:
        """Bring the compiled rule and the matcher in step with the stored row."""
        stored = self.registry.get(namespace, name)
        current = self._compiled.get(stored.rule_id)
        if current is not None:
            current = replace(current, stored=stored)
            self._compiled[stored.rule_id] = current
        self._on_change(stored.rule_id, current)
        return stored


def _stored_only(registry: RuleRegistry, rule: StoredRule) -> StoredRule | None:
    return registry.find(rule.namespace, rule.name)


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
