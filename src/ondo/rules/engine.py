"""The rules engine: the index of enabled rules and the decision pipeline for one event.

Pipeline per event (StackStorm's matcher → filter → enforcer, with ondo's windows in between):
`Matcher.matching` finds the candidate rules in time independent of the number of rules; each
candidate's residual CEL condition runs; then its window (count, `for D` timer) and throttle; a
firing writes an enforcement record and hands ActionRequests to the action queue.

Crash safety and concurrency: the decision for (rule, event), the window state it changed, the
enforcement record and the action queue's jobs of a firing are written in one unit of work
(`Store.atomic`: serializable on PostgreSQL, retried from the start when it lost to a concurrent
one; the dispatcher puts a chunk of events in one), so a crash keeps all of them or none, and two
processes deciding the same window never count an event twice nor fire twice. A re-delivered
event finds its decision and never counts or fires again.

The engine receives what it uses: the store, the clock, a metrics registry, the action queue's
`enqueue_in` and where to announce a failed rule (the bus); platform.py wires them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from ondo.actions.base import ActionRequest
from ondo.backends.bus.base import StoredEvent
from ondo.backends.store import Repositories, Store
from ondo.backends.store.repositories.events import IndexedEvent
from ondo.backends.store.repositories.grants import Grant
from ondo.backends.store.repositories.rules import (
    DecisionKey,
    Enforcement,
    PlannedAction,
    Stage,
    Timer,
    WindowState,
    rule_id,
)
from ondo.clock import Clock
from ondo.events import HOPS_EXTENSION, CloudEvent, format_epoch
from ondo.patterns import Matcher
from ondo.patterns.field import Field
from ondo.rules import enforcement, isolation, windows
from ondo.rules.definitions import CompiledRule, RuleBook, RuleChecks
from ondo.rules.model import CountWindow, SustainWindow
from ondo.security.consent import NO_CONSENT, Consents, Verdict, redact

if TYPE_CHECKING:
    from ondo.rules.dispatcher import RuleDispatcher

log = logging.getLogger("ondo.rules")

MAX_HOPS = 16  # an event made by more rule hops than this is dropped (a loop between rules)
BASE_SUFFIX = "#base"  # matcher id of a `for D` rule's base pattern (events that may cancel)
TIMER_BATCH = 100  # due timers read at a time


class JobQueue(Protocol):
    """The action queue, as the engine sees it: jobs written in the decision's unit of work."""

    async def enqueue_in(self, uow: Repositories, requests: Sequence[ActionRequest]) -> None: ...


class Announcer(Protocol):
    """Where the engine puts `ondo.rule.failed` events (the bus)."""

    async def append(self, events: Sequence[CloudEvent], namespace: str = ...) -> Any: ...


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


Decided = list[tuple[Enforcement, bool]]  # (record, newly decided)


class RuleEngine:
    """platform.rules: define rules (via `book`) and decide what each event makes them do."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        registry: CollectorRegistry,
        queue: JobQueue,
        checks: RuleChecks,
        announcer: Announcer,
        *,
        index_events: bool = False,
    ) -> None:
        self.store = store
        # Write every dispatched event into the store's event index, in the unit of work of
        # its chunk's decisions (a bus whose log does not index lookups asks for it: NATS).
        self.index_events = index_events
        self.clock = clock
        self.queue = queue
        self.announcer = announcer
        self.log = enforcement.EnforcementLog(store)
        self.metrics = RuleMetrics(registry)
        self._matchers: dict[str, Matcher] = {}
        # Per namespace, the `type` conditions every indexed pattern alternative carries (None:
        # some alternative has none, so any type may match); built on demand, dropped on change.
        self._type_gates: dict[str, list[Field] | None] = {}
        self.dispatcher: RuleDispatcher | None = None  # set by the platform's wiring
        # Consent of the events' data subjects (security/consent.py); None: not checked.
        self.consent: Consents | None = None
        self.book = RuleBook(store, clock, checks, on_change=self._reindex)

    async def start(self) -> None:
        """Load every stored rule and follow the change feed (the store must be open)."""
        await self.book.load()

    async def stop(self) -> None:
        await self.book.close()

    # --- keeping the matcher in step with the registry -------------------------------------

    def _reindex(self, rid: str, rule: CompiledRule | None) -> None:
        namespace = rid.split("/", 1)[0]
        matcher = self._matchers.setdefault(namespace, Matcher())
        self._type_gates.pop(namespace, None)
        for mid in (rid, rid + BASE_SUFFIX):
            matcher.remove(mid)
        if rule is None or not rule.stored.enabled:
            return
        matcher.add(rid, rule.spec.pattern)
        base = rule.base_pattern
        if base is not None and base != rule.spec.pattern:
            matcher.add(rid + BASE_SUFFIX, base)

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

    async def dispatch_now(
        self, batch: Sequence[StoredEvent], only_rule: str | None = None
    ) -> list[Enforcement]:
        """Decide, record and enqueue for every rule each event concerns, in order, all in ONE
        unit of work; safe to repeat.

        A decision already recorded for (rule, event) is reused, never taken again: replaying
        an event reaches rules that did not see it (e.g. added since), not the ones that did.
        Decisions, window state, enforcement records and the jobs of every firing commit
        together; if any event raises, nothing of the batch is kept and the error propagates.
        With `index_events`, every event of the batch (also those no rule concerns) is written
        into the store's event index in the same unit of work.
        """
        concerned = []
        for stored in batch:
            if not self._may_concern(stored.namespace, stored.type):
                continue
            event_json = stored.event.to_json_dict()
            rules = self.rules_for(stored, event_json, only_rule)
            if rules:
                concerned.append((stored, event_json, rules))
        decided: Decided = []
        rows = self._index_rows(batch)
        if concerned or rows:  # events no rule concerns (e.g. action outcomes) need no transaction

            async def decide(uow: Repositories) -> Decided:
                if rows:
                    await uow.event_index.add(rows)
                keys = [
                    _key_of(rule, event_json)
                    for _s, event_json, rules in concerned
                    for rule, _full in rules
                ]
                pending = _Pending(await uow.enforcements.find_many("event", keys))
                found: Decided = []
                for stored, event_json, rules in concerned:
                    found += await self._decide_event(uow, stored, event_json, rules, pending)
                await self._write(uow, pending)
                return found

            decided = await self.store.atomic(decide)
        self.metrics.dispatched.inc(len(batch))
        for rec, new in decided:
            if new:
                self._count(rec)
        return [rec for rec, _new in decided]

    def _index_rows(self, batch: Sequence[StoredEvent]) -> list[IndexedEvent]:
        if not self.index_events:
            return []
        return [
            IndexedEvent(
                s.namespace, s.event.source, s.event.id, s.seq, s.event.type, s.received_at
            )
            for s in batch
        ]

    async def index_alone(self, batch: Sequence[StoredEvent]) -> None:
        """Index events decided outside `dispatch_now` (rule by rule, or skipped)."""
        rows = self._index_rows(batch)
        if rows:
            await self.store.repos.event_index.add(rows)

    def rules_for(
        self, stored: StoredEvent, event_json: dict[str, Any], only_rule: str | None
    ) -> list[tuple[CompiledRule, bool]]:
        """The enabled rules the event concerns, with whether their full pattern matched."""
        found = []
        for rid, full in self.candidates(stored.namespace, event_json):
            if only_rule is not None and rid != rule_id(stored.namespace, only_rule):
                continue
            rule = self.book.compiled_rule(rid)
            if rule is not None and rule.stored.enabled:
                found.append((rule, full))
        return found

    async def _decide_event(
        self,
        uow: Repositories,
        stored: StoredEvent,
        event_json: dict[str, Any],
        rules: list[tuple[CompiledRule, bool]],
        pending: _Pending,
    ) -> Decided:
        now = self.clock.now()
        hops = stored.event.hops
        return [
            await self._decide_in(uow, rule, event_json, hops, now, full, pending)
            for rule, full in rules
        ]

    async def _write(self, uow: Repositories, pending: _Pending) -> None:
        """The new records, then the firings' jobs: one statement each for the whole chunk."""
        if pending.new:
            await uow.enforcements.add_many(pending.new)
        if pending.jobs:
            await self.queue.enqueue_in(uow, pending.jobs)

    async def decide_alone(
        self, rule: CompiledRule, event: dict[str, Any], hops: int, now: float, full: bool
    ) -> Enforcement:
        """One rule's decision on one event, with its jobs, in a unit of work of its own."""

        async def decide(uow: Repositories) -> tuple[Enforcement, bool]:
            keys = [_key_of(rule, event)]
            pending = _Pending(await uow.enforcements.find_many("event", keys))
            decided = await self._decide_in(uow, rule, event, hops, now, full, pending)
            await self._write(uow, pending)
            return decided

        rec, new = await self.store.atomic(decide)
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
            return await self.dispatch_now([stored], only_rule)
        except isolation.TRANSIENT:
            raise
        except Exception:
            log.warning("deciding event %s failed; deciding rule by rule", stored.event.id)
        decided = await isolation.decide_rule_by_rule(self, stored, only_rule)
        await self.index_alone([stored])
        return decided

    async def _decide_in(
        self,
        uow: Repositories,
        rule: CompiledRule,
        event: dict[str, Any],
        hops: int,
        now: float,
        full: bool,
        pending: _Pending,
    ) -> tuple[Enforcement, bool]:
        """(record, newly decided): the record found in `pending` (taken before, or earlier in
        this unit of work), else a new one, added to `pending` with its firing's jobs for the
        caller to write in the same unit of work (`_write`)."""
        found = pending.known.get(_key_of(rule, event))
        if found is not None:
            return found, False
        verdict = await self._consent(uow, rule, event, now) if event.get("subject") else None
        if verdict is not None and not verdict.allowed:
            decision = Decision(NO_CONSENT, verdict.why)
        else:
            decision = await self._decide(uow, rule, event, hops, now, full)
        grant = verdict.grant if verdict is not None else None
        rec = self._new_record(rule, "event", event, now, decision, grant)
        pending.add(rec)
        if rec.fired:
            pending.jobs += self._requests(rec, _for_grantee(event, grant), rule)
        return rec, True

    async def _consent(
        self, uow: Repositories, rule: CompiledRule, event: dict[str, Any], now: float
    ) -> Verdict | None:
        """Whether the rule's owner may act on this event about its subject (None: consent is
        not checked here)."""
        if self.consent is None:
            return None
        stored = rule.stored
        return await self.consent.at_firing(
            uow, stored.namespace, stored.owner, str(event["subject"]), str(event["type"]), now
        )

    async def _decide(
        self,
        uow: Repositories,
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
            return await self._sustain(uow, rule, event, now, window, holds, why)
        if not holds:
            return Decision(enforcement.CONDITION_FALSE, why)
        if isinstance(window, CountWindow):
            key = rule.key_of(window.per, event)
            counted = await windows.count(
                uow.windows, rule.rule_id, key, _uid(event), now, window.count, window.within_s
            )
            if not counted.reached:
                return Decision(
                    enforcement.COUNTED,
                    f"{counted.count} of {window.count} within {_span(window.within_s)}"
                    + _for_key(window.per, key),
                )
            return await self._throttled(uow, rule, event, now, f"{window.count}th event; ")
        return await self._throttled(uow, rule, event, now, "")

    async def _sustain(
        self,
        uow: Repositories,
        rule: CompiledRule,
        event: dict[str, Any],
        now: float,
        window: SustainWindow,
        holds: bool,
        why: str,
    ) -> Decision:
        key = rule.sustain_key(event)
        if not holds:
            cancelled = await windows.cancel_timer(uow.windows, rule.rule_id, key)
            if cancelled is None:
                return Decision(enforcement.CONDITION_FALSE, why)
            return Decision(
                enforcement.TIMER_CANCELLED,
                f"{why}: cancelled the timer started at {format_epoch(cancelled.started_at)}"
                f" (due at {format_epoch(cancelled.due_at)})",
            )
        timer, started = await windows.start_timer(
            uow.windows, rule.rule_id, key, now, window.for_s, event
        )
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

    async def _throttled(
        self,
        uow: Repositories,
        rule: CompiledRule,
        event: dict[str, Any],
        now: float,
        why: str,
    ) -> Decision:
        throttle = rule.spec.throttle
        if throttle is None:
            return Decision(enforcement.FIRED, why + "actions enqueued")
        key = rule.key_of(throttle.per, event)
        allowed, last = await windows.throttle_allows(
            uow.windows, rule.rule_id, key, now, throttle.per_s
        )
        if allowed:
            return Decision(enforcement.FIRED, why + "actions enqueued")
        assert last is not None
        return Decision(
            enforcement.SUPPRESSED,
            f"{why}last fired {_span(now - last)} ago; at most once per {_span(throttle.per_s)}"
            + _for_key(throttle.per, key),
        )

    async def _record(
        self,
        uow: Repositories,
        rule: CompiledRule,
        stage: Stage,
        event: dict[str, Any],
        now: float,
        decision: Decision,
        jobs: list[ActionRequest],
        grant: Grant | None = None,
    ) -> Enforcement:
        """Add the record; a firing's jobs go to `jobs` (the caller writes them in the same
        unit of work)."""
        rec = self._new_record(rule, stage, event, now, decision, grant)
        await uow.enforcements.add(rec)
        if rec.fired:
            jobs += self._requests(rec, _for_grantee(event, grant), rule)
        return rec

    def _new_record(
        self,
        rule: CompiledRule,
        stage: Stage,
        event: dict[str, Any],
        now: float,
        decision: Decision,
        grant: Grant | None = None,
    ) -> Enforcement:
        fired = decision.outcome == enforcement.FIRED
        ns, name = rule.stored.namespace, rule.stored.name
        source, eid = str(event["source"]), str(event["id"])
        actions = tuple(
            PlannedAction(
                i, a.kind, a.target or "", enforcement.idempotency_key(source, eid, rule.rule_id, i)
            )
            for i, a in enumerate(rule.spec.actions)
        )
        return Enforcement(
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
            subject=str(event.get("subject") or ""),
            grant=grant.id if grant is not None else "",
        )

    async def record_failure(
        self,
        uow: Repositories,
        rule: CompiledRule,
        stage: Stage,
        event: dict[str, Any],
        reason: str,
    ) -> Enforcement:
        """Record that the rule raised on the event (isolation.py disables it alongside)."""
        decision = Decision(enforcement.FAILED, reason)
        return await self._record(uow, rule, stage, event, self.clock.now(), decision, [])

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

    async def next_timer_due(self) -> float | None:
        return await self.store.repos.windows.next_due()

    async def fire_due_timers(self) -> int:
        """Fire every timer due by now (platform clock); returns how many fired or were spent."""
        handled = 0
        while True:
            now = self.clock.now()
            # A plain read: each timer is taken in its own unit of work, which checks it again.
            due = await self.store.repos.windows.due_timers(now, TIMER_BATCH)
            if not due:
                return handled
            for timer in due:
                await self._fire_timer_isolating(timer, now)
                handled += 1

    async def _fire_timer_isolating(self, timer: Timer, now: float) -> None:
        """Fire a timer; a rule whose firing raises is disabled (its timer cancelled)."""
        try:
            rec = await self.store.atomic(lambda uow: self._fire_timer(uow, timer, now))
        except isolation.TRANSIENT:
            raise
        except Exception as exc:
            rule = self.book.compiled_rule(timer.rule_id)
            if rule is None:
                raise
            failure = isolation.RuleFailure(rule, isolation.reason_of(exc))
            hops = _hops_of(timer.event)
            await isolation.isolate(self, failure, "timer", timer.event, hops)
            return
        if rec is not None and rec[1]:
            self._count(rec[0])

    async def _fire_timer(
        self, uow: Repositories, timer: Timer, now: float
    ) -> tuple[Enforcement, bool] | None:
        """Mark the timer, decide and record the firing, and enqueue its jobs: one unit of
        work. None when the timer was spent already (another process fired it) or its rule is
        gone or disabled."""
        current = await uow.windows.pending_timer(timer.rule_id, timer.key)
        if current is None or current.id != timer.id:
            return None
        rule = self.book.compiled_rule(timer.rule_id)
        if rule is None or not rule.stored.enabled:
            await uow.windows.set_timer_status(timer.id, "cancelled")
            return None
        await uow.windows.set_timer_status(timer.id, "fired")
        event = timer.event
        ns, name = rule.stored.namespace, rule.stored.name
        source, eid = str(event["source"]), str(event["id"])
        found = await uow.enforcements.find(ns, name, "timer", source, eid)
        if found is not None:
            return found, False
        verdict = await self._consent(uow, rule, event, now) if event.get("subject") else None
        if verdict is not None and not verdict.allowed:
            decision = Decision(NO_CONSENT, verdict.why)
        else:
            why = f"held for {_span(now - timer.started_at)}; "
            decision = await self._throttled(uow, rule, event, now, why)
        jobs: list[ActionRequest] = []
        grant = verdict.grant if verdict is not None else None
        rec = await self._record(uow, rule, "timer", event, now, decision, jobs, grant)
        if jobs:
            await self.queue.enqueue_in(uow, jobs)
        return rec, True

    # --- reading -------------------------------------------------------------------------------

    async def window_state(self, namespace: str, name: str) -> WindowState:
        return await self.store.repos.windows.state(rule_id(namespace, name))


class _Pending:
    """A unit of work's decisions on events: the records known (found in the store, or taken
    in it), the new ones and their firings' jobs, written together at its end."""

    def __init__(self, known: dict[DecisionKey, Enforcement]) -> None:
        self.known = known
        self.new: list[Enforcement] = []
        self.jobs: list[ActionRequest] = []

    def add(self, rec: Enforcement) -> None:
        self.known[rec.key] = rec
        self.new.append(rec)


def _key_of(rule: CompiledRule, event: dict[str, Any]) -> DecisionKey:
    stored = rule.stored
    return (stored.namespace, stored.name, str(event["source"]), str(event["id"]))


def _for_grantee(event: dict[str, Any], grant: Grant | None) -> dict[str, Any]:
    """The event as the actions of a rule allowed by `grant` get it: only the data fields the
    grant lets through, when it limits them."""
    if grant is None or grant.fields is None:
        return event
    return redact(event, grant.fields)


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
    for rid in matcher.ids():
        for alternative in matcher.pattern(rid).alternatives:
            gate = [f for f in alternative if f.path == "type" and not f.absent_ok]
            if not gate:
                return None
            found += gate
            if len(found) > TYPE_GATE_MAX:
                return None
    return found
