"""`ondo rules test`: a dry run of rules against one event; changes no state, runs no action."""

from __future__ import annotations

from typing import Any

from ondo.events import CloudEvent
from ondo.patterns import explain
from ondo.rules.definitions import CompiledRule
from ondo.rules.engine import MAX_HOPS, RuleEngine
from ondo.rules.isolation import reason_of
from ondo.rules.model import CountWindow, SustainWindow


async def dry_run(
    engine: RuleEngine, namespace: str, event: Any, rule: str | None = None
) -> dict[str, Any]:
    """For each rule (or the one named): does the event match, and if not, the first reason."""
    event_json = CloudEvent.from_json_dict(event).to_json_dict()
    if rule is not None:
        await engine.book.get(namespace, rule)  # NotFound names the rule
        found = engine.book.compiled_rule(f"{namespace}/{rule}")
        rules = [found] if found is not None else []
    else:
        rules = [r for r in engine.book.compiled() if r.stored.namespace == namespace]
    results = [
        await _one(engine, r, event_json) for r in sorted(rules, key=lambda r: r.stored.name)
    ]
    return {"event": event_json, "results": results}


async def _one(engine: RuleEngine, rule: CompiledRule, event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule.stored.name, "enabled": rule.stored.enabled}
    why = explain(rule.spec.pattern, event)
    if why is not None:
        return {**out, "matches": False, "reason": f"pattern: {why}"}
    try:
        holds, why_not = rule.holds(event)
    except Exception as exc:  # the dispatcher would disable the rule (isolation.py)
        return {
            **out,
            "matches": False,
            "reason": f"the rule fails on this event: {reason_of(exc)}",
        }
    if not holds:
        return {**out, "matches": False, "reason": why_not}
    return {**out, "matches": True, "effect": await _effect(engine, rule, event)}


async def _effect(engine: RuleEngine, rule: CompiledRule, event: dict[str, Any]) -> str:
    hops = CloudEvent.from_json_dict(event).hops
    if hops > MAX_HOPS:
        return f"dropped as a loop ({hops} rule hops, limit {MAX_HOPS})"
    actions = ", ".join(f"{a.kind} {a.target or ''}".strip() for a in rule.spec.actions)
    window = rule.spec.window
    if isinstance(window, CountWindow):
        key = rule.key_of(window.per, event)
        state = await engine.window_state(rule.stored.namespace, rule.stored.name)
        seen = state.counts.get(key, 0)
        return (
            f"counts toward {window.count} times (now {seen} in the window);"
            f" on the {window.count}th: {actions}"
        )
    if isinstance(window, SustainWindow):
        return f"starts a timer (unless one is pending); if the condition holds for it: {actions}"
    if not rule.stored.enabled:
        return f"would {actions}, but the rule is disabled"
    return f"fires: {actions}" + (" (subject to its throttle)" if rule.spec.throttle else "")
