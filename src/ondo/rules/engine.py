"""The rules engine: the index of enabled rules and the decision pipeline for one event.

Pipeline per event (StackStorm's matcher → filter → enforcer, with ondo's windows in between):
`Matcher.matching` finds the candidate rules in time independent of the number of rules; each
candidate's residual CEL condition runs; then its window (count, `for D` timer) and throttle; a
firing writes an enforcement record and hands ActionRequests to the action queue.

Crash safety: the decision for (rule, event), the window state it changed, the enforcement
record and the action queue's jobs of a firing are written in one SQLite transaction (the
dispatcher puts a whole batch of events in one), so a crash keeps all of them or none. A
re-delivered event finds its decision and never counts or fires twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from ondo.actions.base import ActionRequest
from ondo.backends.bus.base import StoredEvent
from ondo.backends.store.repositories.rules import Enforcement, PlannedAction, Stage
from ondo.backends.store.sqlite.migrations import MIGRATIONS
from ondo.events import HOPS_EXTENSION, format_epoch
from ondo.patterns import Matcher
from ondo.patterns.field import Field
from ondo.rules import enforcement, isolation, windows
from ondo.rules.definitions import CompiledRule, RuleBook
from ondo.rules.model import CountWindow, SustainWindow

if TYPE_CHECKING:
    from ondo.platform import Platform
    from ondo.rules.dispatcher import RuleDispatcher

log = logging.getLogger("ondo.rules")

MAX_HOPS = 16  # an event made by more rule hops than this is dropped (a loop between rules)
BASE_SUFFIX = "#base"  # matcher id of a `for D` rule's base pattern (events that may cancel)


class RuleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dispatched = Counter(
            "ondo_rules_events_dispatched",
            "Events the rules dispatcher evaluated",
            registry=registry,
        )
        self.fired = Counter(
            "ondo_rules_fired", "Rule firings (actions enqueued)", ["namespace"], registry=registry
        )
        self.suppressed = Counter(
            "ondo_rules_suppressed",
            "Rule firings suppressed by a throttle or dropped as a loop",
            ["namespace"],
            registry=registry,
        )


@dataclass(frozen=True)
class Decision:
    outcome: str
    detail: str


class RuleEngine:
    """platform.rules: define rules (via `book`) and decide what each event makes them do."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db
        self.clock = platform.clock
        db = platform.db
        db.migrate(MIGRATIONS)  # every domain's: idempotent
        self.log = enforcement.EnforcementLog(db)
        self.metrics = RuleMetrics(platform.metrics.registry)
        self._matchers: dict[str, Matcher] = {}
        # Per namespace, the `type` conditions every indexed pattern alternative carries (None:
        # some alternative has none, so any type may match); built on demand, dropped on change.
        self._type_gates: dict[str, list[Field] | None] = {}
        self.dispatcher: RuleDispatcher | None = None  # set by dispatcher.install
        self.book = RuleBook(platform, on_change=self._reindex, on_forget=self._forget_state)
        for rule in self.book.compiled():
            self._reindex(rule.rule_id, rule)

    # --- keeping the matcher in step with the registry -------------------------------------

    def _reindex(self, rule_id: str, rule: CompiledRule | None) -> None:
        namespace = rule_id.split("/", 1)[0]
        matcher = self._matchers.setdefault(namespace, Matcher())
        self._type_gates.pop(namespace, None)
        for mid in (rule_id, rule_id + BASE_SUFFIX):
            matcher.remove(mid)
        if rule is None or not rule.stored.enabled:
            return
        matcher.add(rule_id, rule.spec.pattern)
        base = rule.base_pattern
        if base is not None and base != rule.spec.pattern:
            matcher.add(rule_id + BASE_SUFFIX, base)

    def _forget_state(self, conn: sqlite3.Connection, rule_id: str) -> None:
        windows.forget_rule(conn, rule_id)

    # --- one event ---------------------------------------------------------------------------

    def _may_concern(self, namespace: str, event_type: str) -> bool:
        """False only when no pattern in the namespace can match an event of this type.

        Exact: an alternative whose top-level `type` condition fails on the event's type cannot
        match, whatever the other fields hold. Lets the dispatcher skip building the JSON form
        of events no rule looks at (e.g. `ondo.action.*` outcomes).
        """
        matcher = self._matchers.get(namespace)
        if matcher is None:
            return False
        if namespace not in self._type_gates:
            self._type_gates[namespace] = _type_conditions(matcher)
        gate = self._type_gates[namespace]
        return gate is None or any(field.test(event_type) for field in gate)

    def candidates(self, namespace: str, event_json: dict[str, Any]) -> list[tuple[str, bool]]:
        """(rule id, full pattern matched) for each rule the event concerns, in name order."""
        matcher = self._matchers.get(namespace)
        if matcher is None:
            return []
        found = matcher.matching(event_json)
        full = {m for m in found if not m.endswith(BASE_SUFFIX)}
        base = {m[: -len(BASE_SUFFIX)] for m in found if m.endswith(BASE_SUFFIX)} - full
        return sorted([(r, True) for r in full] + [(r, False) for r in base])

    def dispatch_now(
        self, batch: Sequence[StoredEvent], only_rule: str | None = None
    ) -> list[Enforcement]:
        """Decide, record and enqueue for every rule each event concerns, in order, all in ONE
        store transaction; safe to repeat.

        A decision already recorded for (rule, event) is reused, never taken again: replaying
        an event reaches rules that did not see it (e.g. added since), not the ones that did.
        Decisions, window state, enforcement records and the jobs of every firing commit
        together; if any event raises, nothing of the batch is kept and the error propagates.
        """
        concerned = []
        for stored in batch:
            if not self._may_concern(stored.namespace, stored.event.type):
                continue
            event_json = stored.event.to_json_dict()
            rules = self.rules_for(stored, event_json, only_rule)
            if rules:
                concerned.append((stored, event_json, rules))
        decided: list[tuple[Enforcement, bool]] = []
        if concerned:  # events no rule concerns (e.g. action outcomes) need no transaction
            with self.db.transaction() as conn:
                for stored, event_json, rules in concerned:
                    decided += self._decide_event(conn, stored, event_json, rules)
        self.metrics.dispatched.inc(len(batch))
        for rec, new in decided:
            if new:
                self._count(rec)
        return [rec for rec, _new in decided]

    def rules_for(
        self, stored: StoredEvent, event_json: dict[str, Any], only_rule: str | None
    ) -> list[tuple[CompiledRule, bool]]:
        """The enabled rules the event concerns, with whether their full pattern matched."""
        found = []
        for rid, full in self.candidates(stored.namespace, event_json):
            if only_rule is not None and rid != f"{stored.namespace}/{only_rule}":
                continue
            rule = self.book.compiled_rule(rid)
            if rule is not None and rule.stored.enabled:
                found.append((rule, full))
        return found

    def _decide_event(
        self,
        conn: sqlite3.Connection,
        stored: StoredEvent,
        event_json: dict[str, Any],
        rules: list[tuple[CompiledRule, bool]],
    ) -> list[tuple[Enforcement, bool]]:
        now = self.clock.now()
        hops = stored.event.hops
        return [self._decide_in(conn, rule, event_json, hops, now, full) for rule, full in rules]

    def decide_alone(
        self, rule: CompiledRule, event: dict[str, Any], hops: int, now: float, full: bool
    ) -> Enforcement:
        """One rule's decision on one event, with its jobs, in a transaction of its own."""
        with self.db.transaction() as conn:
            rec, new = self._decide_in(conn, rule, event, hops, now, full)
        if new:
            self._count(rec)
        return rec

    async def dispatch_isolating(
        self, stored: StoredEvent, only_rule: str | None = None
    ) -> list[Enforcement]:
        """`dispatch_now` of one event, but should deciding it raise, decide it rule by rule: a
        rule that raises is disabled and recorded as failed, every other rule decides
        (isolation.py). Errors of the store or bus propagate, for the caller to try again."""
        try:
            return self.dispatch_now([stored], only_rule)
        except isolation.TRANSIENT:
            raise
        except Exception:
            log.warning("deciding event %s failed; deciding rule by rule", stored.event.id)
        return await isolation.decide_rule_by_rule(self, stored, only_rule)

    def _decide_in(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        event: dict[str, Any],
        hops: int,
        now: float,
        full: bool,
    ) -> tuple[Enforcement, bool]:
        """(record, newly decided); a firing's jobs join the transaction."""
        key = (rule.stored.namespace, rule.stored.name, "event")
        found = enforcement.find(conn, *key, str(event["source"]), str(event["id"]))  # type: ignore[arg-type]
        if found is not None:
            return found, False
        decision = self._decide(conn, rule, event, hops, now, full)
        return self._record(conn, rule, "event", event, now, decision), True

    def _decide(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        event: dict[str, Any],
        hops: int,
        now: float,
        full: bool,
    ) -> Decision:
        if hops > MAX_HOPS:
            return Decision(
                enforcement.DROPPED_LOOP,
                f"the event has been through {hops} rule hops (limit {MAX_HOPS}): rules emit"
                " each other's events in a loop",
            )
        holds, why = (False, "only the base pattern matched") if not full else rule.holds(event)
        window = rule.spec.window
        if isinstance(window, SustainWindow):
            return self._sustain(conn, rule, event, now, window, holds, why)
        if not holds:
            return Decision(enforcement.CONDITION_FALSE, why)
        if isinstance(window, CountWindow):
            key = rule.key_of(window.per, event)
            counted = windows.count(
                conn, rule.rule_id, key, _uid(event), now, window.count, window.within_s
            )
            if not counted.reached:
                return Decision(
                    enforcement.COUNTED,
                    f"{counted.count} of {window.count} within {_span(window.within_s)}"
                    + _for_key(window.per, key),
                )
            return self._throttled(conn, rule, event, now, f"{window.count}th event; ")
        return self._throttled(conn, rule, event, now, "")

    def _sustain(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        event: dict[str, Any],
        now: float,
        window: SustainWindow,
        holds: bool,
        why: str,
    ) -> Decision:
        key = rule.sustain_key(event)
        if not holds:
            cancelled = windows.cancel_timer(conn, rule.rule_id, key)
            if cancelled is None:
                return Decision(enforcement.CONDITION_FALSE, why)
            return Decision(
                enforcement.TIMER_CANCELLED,
                f"{why}: cancelled the timer started at {format_epoch(cancelled.started_at)}"
                f" (due at {format_epoch(cancelled.due_at)})",
            )
        timer, started = windows.start_timer(conn, rule.rule_id, key, now, window.for_s, event)
        if started:
            return Decision(
                enforcement.TIMER_STARTED,
                f"fires at {format_epoch(timer.due_at)} unless the condition stops holding before"
                f" ({_span(window.for_s)})",
            )
        return Decision(
            enforcement.TIMER_PENDING,
            f"a timer started by event {timer.event.get('id')!r}"
            f" is due at {format_epoch(timer.due_at)}",
        )

    def _throttled(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        event: dict[str, Any],
        now: float,
        why: str,
    ) -> Decision:
        throttle = rule.spec.throttle
        if throttle is None:
            return Decision(enforcement.FIRED, why + "actions enqueued")
        key = rule.key_of(throttle.per, event)
        allowed, last = windows.throttle_allows(conn, rule.rule_id, key, now, throttle.per_s)
        if allowed:
            return Decision(enforcement.FIRED, why + "actions enqueued")
        assert last is not None
        return Decision(
            enforcement.SUPPRESSED,
            f"{why}last fired {_span(now - last)} ago; at most once per {_span(throttle.per_s)}"
            + _for_key(throttle.per, key),
        )

    def _record(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        stage: Stage,
        event: dict[str, Any],
        now: float,
        decision: Decision,
    ) -> Enforcement:
        """Insert the record; a firing's jobs are inserted in the same transaction."""
        fired = decision.outcome == enforcement.FIRED
        ns, name = rule.stored.namespace, rule.stored.name
        source, eid = str(event["source"]), str(event["id"])
        actions = tuple(
            PlannedAction(
                i, a.kind, a.target or "", enforcement.idempotency_key(source, eid, rule.rule_id, i)
            )
            for i, a in enumerate(rule.spec.actions)
        )
        rec = Enforcement(
            id=enforcement.new_id(),
            namespace=ns,
            rule=name,
            stage=stage,
            event_source=source,
            event_id=eid,
            event_type=str(event.get("type", "")),
            at=now,
            outcome=decision.outcome,
            detail=decision.detail,
            actions=actions if fired else (),
        )
        enforcement.record(conn, rec)
        if fired:
            self.platform.actions.enqueue_in_connection(conn, self._requests(rec, event, rule))
        return rec

    def record_failure(
        self,
        conn: sqlite3.Connection,
        rule: CompiledRule,
        stage: Stage,
        event: dict[str, Any],
        reason: str,
    ) -> Enforcement:
        """Record that the rule raised on the event (isolation.py disables it alongside)."""
        decision = Decision(enforcement.FAILED, reason)
        return self._record(conn, rule, stage, event, self.clock.now(), decision)

    def _count(self, rec: Enforcement) -> None:
        """Metrics for a new decision, once its transaction committed."""
        if rec.outcome == enforcement.FIRED:
            self.metrics.fired.labels(rec.namespace).inc()
        elif rec.outcome in (enforcement.SUPPRESSED, enforcement.DROPPED_LOOP):
            self.metrics.suppressed.labels(rec.namespace).inc()

    # --- handing firings to the action queue ------------------------------------------------

    def _requests(
        self, rec: Enforcement, event: dict[str, Any], rule: CompiledRule | None
    ) -> list[ActionRequest]:
        requests = []
        for planned in rec.actions:
            if rule is None or planned.index >= len(rule.spec.actions):
                log.warning(
                    "rule %s/%s changed before its firing %s was enqueued",
                    rec.namespace,
                    rec.rule,
                    rec.id,
                )
                continue
            requests.append(
                ActionRequest(
                    key=planned.idempotency_key,
                    namespace=rec.namespace,
                    rule=rec.rule,
                    action_index=planned.index,
                    action=rule.spec.actions[planned.index],
                    event=event,
                    enforcement_id=rec.id,
                )
            )
        return requests

    # --- `for D` timers ---------------------------------------------------------------------

    def next_timer_due(self) -> float | None:
        result: float | None = self.db.call(windows.next_due)
        return result

    async def fire_due_timers(self) -> int:
        """Fire every timer due by now (platform clock); returns how many fired or were spent."""
        handled = 0
        while True:
            now = self.clock.now()
            # A plain read (no write transaction): the dispatcher wakes this after every batch.
            due: list[windows.Timer] = self.db.call(partial(windows.due_timers, now=now))
            if not due:
                return handled
            for timer in due:
                await self._fire_timer_isolating(timer, now)
                handled += 1

    async def _fire_timer_isolating(self, timer: windows.Timer, now: float) -> None:
        """Fire a timer; a rule whose firing raises is disabled (its timer cancelled)."""
        try:
            self._fire_timer(timer, now)
        except isolation.TRANSIENT:
            raise
        except Exception as exc:
            rule = self.book.compiled_rule(timer.rule_id)
            if rule is None:
                raise
            failure = isolation.RuleFailure(rule, isolation.reason_of(exc))
            hops = _hops_of(timer.event)
            await isolation.isolate(self, failure, "timer", timer.event, hops)

    def _fire_timer(self, timer: windows.Timer, now: float) -> Enforcement | None:
        """Mark the timer, decide and record the firing, and enqueue its jobs: one transaction."""
        rule = self.book.compiled_rule(timer.rule_id)
        with self.db.transaction() as conn:
            if rule is None or not rule.stored.enabled:
                windows.mark_timer(conn, timer.id, "cancelled")
                return None
            windows.mark_timer(conn, timer.id, "fired")
            event = timer.event
            found = enforcement.find(
                conn,
                rule.stored.namespace,
                rule.stored.name,
                "timer",
                str(event["source"]),
                str(event["id"]),
            )
            if found is not None:
                return found
            why = f"held for {_span(now - timer.started_at)}; "
            decision = self._throttled(conn, rule, event, now, why)
            rec = self._record(conn, rule, "timer", event, now, decision)
        self._count(rec)
        return rec

    # --- reading -------------------------------------------------------------------------------

    def window_state(self, namespace: str, name: str) -> dict[str, Any]:
        rid = f"{namespace}/{name}"
        state: dict[str, Any] = self.db.call(lambda conn: windows.window_state(conn, rid))
        return state


def _hops_of(event: dict[str, Any]) -> int:
    hops = event.get(HOPS_EXTENSION, 0)
    return hops if isinstance(hops, int) and not isinstance(hops, bool) else 0


def _uid(event: dict[str, Any]) -> str:
    return json.dumps([event.get("source"), event.get("id")])


def _for_key(per: str | None, key: str) -> str:
    return f" for {per} {key}" if per else ""


def _span(seconds: float) -> str:
    """A duration in the unit a person would say it in."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


# The gate is tried on every event, so it must stay small: past this many `type` conditions it
# is switched off and the Matcher (whose cost does not grow with the rules) decides alone.
TYPE_GATE_MAX = 32


def _type_conditions(matcher: Matcher) -> list[Field] | None:
    """The top-level `type` fields of every alternative of every pattern; None if one lacks it
    or if there are more than TYPE_GATE_MAX of them."""
    found: list[Field] = []
    for rule_id in matcher.ids():
        for alternative in matcher.pattern(rule_id).alternatives:
            gate = [f for f in alternative if f.path == "type" and not f.absent_ok]
            if not gate:
                return None
            found += gate
            if len(found) > TYPE_GATE_MAX:
                return None
    return found
