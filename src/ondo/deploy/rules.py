"""The deploy planner for `rules:` in ondo.yaml: create, update, unchanged or delete per rule.

Items are `{name: N, when: 'on … do …'}`, `{name: N, pattern: {...}, condition: CEL,
window: {...}, throttle: {...}, actions: [...]}` (the JSON form), or a bare rule text; each may
say `enabled: false`. Every rule is parsed and validated while planning (errors name
ondo.yaml:LINE); functions of the same manifest count as existing, since functions apply first,
and so do its contacts and groups (notify's recipients), which apply before the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ondo.actions.contacts import declared
from ondo.deploy.manifest import Manifest
from ondo.deploy.targets import DeployTargets, RuleTargets
from ondo.errors import ConfigError, OndoError
from ondo.rules.definitions import CompiledRule

Change = Literal["create", "update", "unchanged", "delete"]
ITEM_KEYS = ("name", "when", "enabled", "pattern", "condition", "window", "throttle", "actions")
DEFINITION_KEYS = ("pattern", "condition", "window", "throttle", "actions")
DEPLOY_OWNER = "admin"  # who owns the rules of a deploy that does not say (`ondo up --app`)


@dataclass(frozen=True)
class RuleStep:
    kind: str
    name: str
    change: Change
    detail: str
    namespace: str
    rule: CompiledRule | None
    enabled: bool = True

    async def apply(self, targets: DeployTargets) -> dict[str, Any]:
        book = targets.rules
        if self.change == "delete":
            await book.delete(self.namespace, self.name)
        elif self.change != "unchanged" and self.rule is not None:
            # The plan refused another principal's rule unless the deploy takes it over.
            await book.add(self.rule, replace_existing=True, take_over=True)
            if not self.enabled:
                await book.set_enabled(self.namespace, self.name, False)
        return {}


def plan_rules(
    book: RuleTargets, manifest: Manifest, namespace: str, owner: str = DEPLOY_OWNER
) -> list[RuleStep]:
    """`owner`: the principal deploying, who owns the rules it creates or changes. `book`'s
    rules are as last read from the store (a cache kept by the change feed)."""
    steps: list[RuleStep] = []
    seen: dict[str, str | int] = {}
    directory = manifest.directory  # notify's recipients may be declared by this very deploy
    with declared(namespace, manifest.app, directory.contacts, directory.groups):
        prepared = [
            (index, *_prepare(book, manifest, namespace, owner, index, item))
            for index, item in _items(manifest)
        ]
    for index, rule, enabled in prepared:
        name = rule.stored.name
        if name in seen:
            raise _error(manifest, (index, "name"), f"rule {name!r} is also item {seen[name]}")
        seen[name] = index
        current = book.stored_rule(namespace, name)
        if current is None:
            change: Change = "create"
            detail = rule.stored.text or "new rule (JSON form)"
        elif current.same_definition(rule.stored) and current.app == manifest.app:
            change, detail = "unchanged", "same definition"
        else:
            change, detail = "update", f"now: {rule.stored.text or 'JSON form changed'}"
        steps.append(RuleStep("rule", name, change, detail, namespace, rule, enabled))
    for name in book.names_of_app(namespace, manifest.app):
        if name not in seen:
            steps.append(
                RuleStep("rule", name, "delete", "no longer in ondo.yaml", namespace, None)
            )
    return steps


def _items(manifest: Manifest) -> list[tuple[str | int, Any]]:
    """(path key, item): list items by index; a mapping `rules: {NAME: rule}` by name."""
    raw = manifest.source.data.get("rules") if manifest.source is not None else None
    if isinstance(raw, dict):
        return [(name, _named(name, item)) for name, item in raw.items()]
    return list(enumerate(manifest.rules))


def _named(name: str, item: Any) -> Any:
    if isinstance(item, str):
        return {"name": name, "when": item}
    if isinstance(item, dict) and "name" not in item:
        return {"name": name, **item}
    return item


def _prepare(
    book: RuleTargets,
    manifest: Manifest,
    namespace: str,
    owner: str,
    index: str | int,
    item: Any,
) -> tuple[CompiledRule, bool]:
    if isinstance(item, str):
        item = {"when": item}
    if not isinstance(item, dict):
        raise _error(manifest, (index,), "a rule is {name: N, when: 'on … do …'} or a JSON rule")
    for key in item:
        if key not in ITEM_KEYS:
            raise _error(
                manifest, (index, key), f"unknown key {key!r}; allowed here: {', '.join(ITEM_KEYS)}"
            )
    when = item.get("when")
    definition = {k: v for k, v in item.items() if k in DEFINITION_KEYS} or None
    if (when is None) == (definition is None):
        raise _error(manifest, (index,), "give either `when: 'on … do …'` or `pattern` + `actions`")
    if when is not None and not isinstance(when, str):
        raise _error(manifest, (index, "when"), "`when` must be the rule as text: on … do …")
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise _error(manifest, (index, "name"), "`name` must be text")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _error(manifest, (index, "enabled"), "`enabled` must be true or false")
    try:
        rule = book.prepare(
            namespace,
            owner,
            name=name,
            text=when,
            definition=definition,
            app=manifest.app,
            known_functions=set(manifest.functions),
        )
    except OndoError as exc:
        raise _error(
            manifest, (index, "when" if when is not None else "pattern"), str(exc)
        ) from None
    return rule, enabled


def _error(manifest: Manifest, path: tuple[str | int, ...], message: str) -> ConfigError:
    full = ("rules", *path)
    if manifest.source is None:
        return ConfigError(f"ondo.yaml ({'.'.join(map(str, full))}): {message}")
    return manifest.source.error(full, message)
