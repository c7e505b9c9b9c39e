"""When a rule fails on an event: disable that rule, say so, and go on with every other rule.

The dispatcher decides a chunk of events in one unit of work; when that raises, it takes the
events one at a time, and an event whose decision still raises is decided here rule by rule,
each rule in a unit of work of its own (matching too, should the Matcher be what raises). A rule
whose matching, condition, window or actions raise is disabled with the reason kept (`ondo rules
show`, GET /v1/rules/NAME), gets an enforcement record `failed` (so `ondo trace EVENT` tells it)
and an `ondo.rule.failed` event on the bus (source `ondo`, subject the rule's name); the other
rules decide as usual. Errors of the store or the bus are no rule's fault: they propagate and
the dispatcher tries the event again (and records it as skipped if it never succeeds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ondo.actions.base import derived_id
from ondo.backends.bus.base import StoredEvent
from ondo.backends.store import Repositories
from ondo.backends.store.repositories.rules import Enforcement, Stage
from ondo.errors import BusError, StoreError
from ondo.events import HOPS_EXTENSION, CloudEvent
from ondo.patterns import compile as compile_pattern
from ondo.rules.definitions import CompiledRule

if TYPE_CHECKING:
    from ondo.rules.engine import RuleEngine

log = logging.getLogger("ondo.rules")

RULE_FAILED: Final = "ondo.rule.failed"
# Failures of the store or the bus, not of a rule: never a reason to disable one.
TRANSIENT: Final = (StoreError, OSError, BusError)
_REASON_CHARS: Final = 500


@dataclass(frozen=True)
class RuleFailure:
    """A rule that raised on an event, and why (the exception, in words)."""

    rule: CompiledRule
    reason: str


def reason_of(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "…"


async def decide_rule_by_rule(
    engine: RuleEngine, stored: StoredEvent, only_rule: str | None = None
) -> list[Enforcement]:
    """Decide one event for each rule (or the one named) on its own; a rule that raises is
    isolated."""
    event = stored.event.to_json_dict()
    candidates, failures = _candidates(engine, stored, event, only_rule)
    now = engine.clock.now()
    records = []
    for rule, full in candidates:
        try:
            records.append(await engine.decide_alone(rule, event, stored.event.hops, now, full))
        except TRANSIENT:
            raise
        except Exception as exc:
            failures.append(RuleFailure(rule, reason_of(exc)))
    for failure in failures:
        records.append(await isolate(engine, failure, "event", event, stored.event.hops))
    return records


def _candidates(
    engine: RuleEngine, stored: StoredEvent, event: dict[str, Any], only_rule: str | None
) -> tuple[list[tuple[CompiledRule, bool]], list[RuleFailure]]:
    """The rules the event concerns, from the Matcher or, if that raises, rule by rule."""
    try:
        return engine.rules_for(stored, event, only_rule), []
    except TRANSIENT:
        raise
    except Exception:
        log.warning("matching event %s failed; matching rule by rule", stored.event.id)
    found: list[tuple[CompiledRule, bool]] = []
    failures: list[RuleFailure] = []
    for rule in engine.book.compiled():
        if rule.stored.namespace != stored.namespace or not rule.stored.enabled:
            continue
        if only_rule is not None and rule.stored.name != only_rule:
            continue
        try:
            concern = _concerns(rule, event)
        except Exception as exc:
            failures.append(RuleFailure(rule, f"matching failed: {reason_of(exc)}"))
            continue
        if concern is not None:
            found.append((rule, concern))
    return sorted(found, key=lambda pair: pair[0].stored.name), failures


def _concerns(rule: CompiledRule, event: dict[str, Any]) -> bool | None:
    """True: the pattern matches; False: only the base pattern (`for D`); None: neither."""
    if compile_pattern(rule.spec.pattern).matches(event):
        return True
    base = rule.base_pattern
    if base is not None and base != rule.spec.pattern and compile_pattern(base).matches(event):
        return False
    return None


async def isolate(
    engine: RuleEngine,
    failure: RuleFailure,
    stage: Stage,
    event: dict[str, Any],
    hops: int,
) -> Enforcement:
    """Disable the rule with its reason (which drops its windows and cancels its timers) and
    record `failed`, in one transaction; then announce it."""
    rule = failure.rule.stored
    source, eid = str(event.get("source")), str(event.get("id"))
    reason = f"failed on event {eid}: {failure.reason}"

    async def disable(uow: Repositories) -> Enforcement:
        rec = await uow.enforcements.find(rule.namespace, rule.name, stage, source, eid)
        if rec is None:
            rec = await engine.record_failure(uow, failure.rule, stage, event, failure.reason)
        await engine.book.disable_in(uow, rule, reason)
        return rec

    rec = await engine.store.atomic(disable)
    await engine.book.reload(rule.namespace, rule.name)
    log.error("rule %s failed on event %s and was disabled: %s", rule.rule_id, eid, failure.reason)
    await _announce(engine, rec, failure.reason, hops)
    return rec


async def _announce(engine: RuleEngine, rec: Enforcement, reason: str, hops: int) -> None:
    """`ondo.rule.failed` on the bus; its id is derived, so a repeat is deduplicated."""
    key = "\x00".join((rec.namespace, rec.rule, rec.stage, rec.event_source, rec.event_id))
    announcement = CloudEvent(
        id=derived_id(key, "failed"),
        source="ondo",
        type=RULE_FAILED,
        subject=rec.rule,
        datacontenttype="application/json",
        data={
            "rule": rec.rule,
            "namespace": rec.namespace,
            "reason": reason,
            "disabled": True,
            "event": {"source": rec.event_source, "id": rec.event_id, "type": rec.event_type},
            "stage": rec.stage,
        },
        extensions={HOPS_EXTENSION: hops + 1},
    )
    try:
        await engine.announcer.append([announcement], namespace=rec.namespace)
    except TRANSIENT:
        log.exception("could not put %s for rule %s on the bus", RULE_FAILED, rec.rule)
