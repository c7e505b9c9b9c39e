"""What one deployment may not do to another app: take over its resources, or delete a function
that enabled rules still invoke (their next event would only be dead-lettered)."""

from __future__ import annotations

from collections.abc import Iterable

from ondo.actions.model import Action
from ondo.deploy.targets import DeployTargets, RuleTargets
from ondo.errors import Conflict
from ondo.rules.model import rule_from_json


def invokes(actions: Iterable[Action], function: str) -> bool:
    return any(a.kind == "invoke" and a.target == function for a in actions)


def invoking_rules(rules: RuleTargets, namespace: str, function: str) -> list[str]:
    """Names of the enabled rules of `namespace` that invoke `function`."""
    return [
        stored.name
        for stored in rules.stored_in(namespace)
        if stored.enabled and invokes(rule_from_json(stored.spec).actions, function)
    ]


def refuse_take_over(taken: list[tuple[str, str, str]], app: str) -> Conflict:
    """The error for (kind, name, owner) resources that app `app` would take over."""
    listed = "; ".join(f"{kind} {name!r} belongs to app {owner!r}" for kind, name, owner in taken)
    return Conflict(
        f"app {app!r} would take over resources of other apps: {listed}. Rename yours, remove"
        " them from the other app first, or deploy with --take-over to move them to this app"
    )


def refuse_foreign_rules(foreign: list[tuple[str, str]], caller: str) -> Conflict:
    """The error for (rule, owner) rules of other principals that `caller`'s deploy would
    replace or delete."""
    listed = "; ".join(f"rule {name!r} belongs to {owner!r}" for name, owner in foreign)
    return Conflict(
        f"this deploy would change rules that {caller!r} did not write: {listed}. Rename"
        " yours, ask their owners, or deploy with --take-over to make them yours"
    )


def refuse_delete(function: str, namespace: str, rules: list[str], how: str) -> Conflict:
    """The error for deleting `function` while enabled `rules` invoke it; `how` to force it."""
    return Conflict(
        f"function {function!r} is invoked by enabled rules of namespace {namespace!r}:"
        f" {', '.join(rules)}; deleting it would dead-letter their next events. Delete or"
        f" disable those rules first, or {how} to disable them along with it"
    )


async def delete_function(
    targets: DeployTargets, name: str, namespace: str, *, force: bool = False
) -> list[str]:
    """Delete `name`; refused while enabled rules invoke it, unless `force`, which disables
    them first. Returns the names of the rules disabled."""
    targets.functions.get(name, namespace)  # NotFound before anything else
    rules = invoking_rules(targets.rules, namespace, name)
    if rules and not force:
        raise refuse_delete(name, namespace, rules, "pass --force")
    for rule in rules:
        await targets.rules.set_enabled(namespace, rule, False)
    await targets.functions.delete(name, namespace)
    return rules
