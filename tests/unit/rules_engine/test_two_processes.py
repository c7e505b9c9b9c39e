"""Two rules engines on one store, as two `ondo up` processes on one PostgreSQL are (two Store
objects: two pools, two LISTEN connections). On SQLite, one store belongs to one process, so
both engines share it: the same decisions must come out.

- Deciding interleaved events of one count window together, the dispatchers never count an
  event twice nor fire twice: every firing is exact, with its job.
- A rule added, changed, disabled or deleted through one is what the other matches next (the
  change feed), and a `*` notification makes it read every rule again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from ondo.actions.base import ActionRequest
from ondo.actions.codec import request_to_json
from ondo.backends.bus import open_bus
from ondo.backends.bus.base import Bus
from ondo.backends.store import Repositories, Store
from ondo.backends.store.repositories.actions import NewJob
from ondo.clock import Clock, ManualClock
from ondo.events import CloudEvent
from ondo.rules.definitions import RuleChecks
from ondo.rules.dispatcher import RuleDispatcher
from ondo.rules.engine import RuleEngine
from tests.unit.store.conftest import StoreFactory

COUNT_RULE = "on claim 3 times within 1h do emit claim.many"
WAIT_S = 10.0  # how long a change may take to reach the other engine before the test fails


class StoreJobs:
    """The action queue's side the engine uses: a firing's jobs, in the decision's unit of work
    (the queue itself, with its workers, is not what these tests are about)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def enqueue_in(self, uow: Repositories, requests: Sequence[ActionRequest]) -> None:
        jobs = [
            NewJob(
                key=r.key,
                namespace=r.namespace,
                rule=r.rule,
                action_index=r.action_index,
                kind=r.action.kind,
                enforcement_id=r.enforcement_id,
                event_source=str(r.event.get("source")),
                event_id=str(r.event.get("id")),
                max_attempts=1,
                request=request_to_json(r),
                lane=r.action.kind,  # emit: its lane is its word
            )
            for r in requests
        ]
        await uow.jobs.insert(jobs, self.clock.now())


def _checks() -> RuleChecks:
    return RuleChecks(function_exists=lambda _n, _ns: True, validate_action=lambda _a, _ns: None)


class Process:
    """What one `ondo up` holds of the rules: its bus, engine and dispatcher, on a store."""

    def __init__(self, store: Store, clock: ManualClock) -> None:
        self.store = store
        self.bus: Bus = open_bus("memory://", clock=clock.now)
        self.engine = RuleEngine(
            store, clock, CollectorRegistry(), StoreJobs(clock), _checks(), self.bus
        )
        self.dispatcher = RuleDispatcher(self.bus, clock, self.engine)

    async def define(self, text: str, name: str) -> None:
        book = self.engine.book
        await book.add(
            book.prepare("default", "admin", name=name, text=text), replace_existing=True
        )

    def matches(self, event_type: str) -> list[str]:
        found = self.engine.candidates("default", {"type": event_type, "source": "s", "id": "x"})
        return [rid for rid, _full in found]


@asynccontextmanager
async def two_processes(make_store: StoreFactory) -> AsyncIterator[tuple[Process, Process]]:
    first = await make_store()
    second = await make_store() if first.dialect == "postgres" else first
    clock = ManualClock()
    processes = (Process(first, clock), Process(second, clock))
    try:
        for process in processes:
            await process.engine.start()
        yield processes
    finally:
        for process in processes:
            await process.engine.stop()
            await process.bus.close()
        await second.close()
        if second is not first:
            await first.close()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (what the change feed brings about), failing after WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(_call(body))


async def _call(body: Callable[[], Awaitable[None]]) -> None:
    await body()


def test_two_dispatchers_deciding_one_count_window_count_each_event_once(
    make_store: StoreFactory,
) -> None:
    """90 distinct claims, dealt to two dispatchers so that their chunks interleave (each
    takes every other claim, and both are also given the same 30 claims, as a redelivery or a
    replay would): exactly 30 firings (one per 3 claims), one decision per claim, one job per
    firing, and nothing left counted."""

    async def body() -> None:
        async with two_processes(make_store) as (one, two):
            await one.define(COUNT_RULE, "many")
            await eventually(lambda: two.matches("claim") == ["default/many"])
            claims = [CloudEvent(source="s", type="claim", id=f"c{i:02}") for i in range(90)]
            shared = claims[60:]
            await one.bus.append(claims[0:60:2] + shared)
            await two.bus.append(claims[1:60:2] + shared[::-1])
            dealt = await asyncio.gather(one.dispatcher.catch_up(), two.dispatcher.catch_up())
            assert dealt == [60, 60]

            log = one.engine.log
            decisions = [r for c in claims for r in await log.for_event(c.id)]
            assert sorted(r.event_id for r in decisions) == sorted(c.id for c in claims)
            outcomes = [r.outcome for r in decisions]
            assert outcomes.count("fired") == 30 and outcomes.count("counted") == 60
            sql = one.store.database.sql
            assert await sql.fetch_value("SELECT COUNT(*) FROM action_jobs") == 30
            fired = {r.id for r in decisions if r.outcome == "fired"}
            jobs = await sql.fetch("SELECT enforcement_id, request FROM action_jobs")
            assert {j["enforcement_id"] for j in jobs} == fired
            assert all(json.loads(j["request"])["action"]["target"] == "claim.many" for j in jobs)
            assert (await one.engine.window_state("default", "many")).counts == {}

    run(body)


def test_a_rule_changed_through_one_process_is_what_the_other_matches(
    make_store: StoreFactory,
) -> None:
    async def body() -> None:
        async with two_processes(make_store) as (one, two):
            await one.define("on ping do emit pong", "echo")
            await eventually(lambda: two.matches("ping") == ["default/echo"])
            await one.define("on pong do emit ping", "echo")  # replaced
            await eventually(lambda: two.matches("ping") == [] and two.matches("pong") != [])
            await one.engine.book.set_enabled("default", "echo", False)
            await eventually(lambda: two.matches("pong") == [])
            stored = two.engine.book.stored_rule("default", "echo")
            assert stored is not None and not stored.enabled
            await two.engine.book.set_enabled("default", "echo", True)  # the other way
            await eventually(lambda: one.matches("pong") == ["default/echo"])
            await one.engine.book.delete("default", "echo")
            await eventually(lambda: two.engine.book.stored_rule("default", "echo") is None)
            assert two.matches("pong") == []

    run(body)


def test_everything_changed_is_read_again_on_a_star(make_store: StoreFactory) -> None:
    """`*` is sent when notifications may have been missed: every rule is read again, so a rule
    written without a notification (as if it were lost) is matched after it."""

    async def body() -> None:
        async with two_processes(make_store) as (one, two):
            await one.define("on ping do emit pong", "echo")
            await eventually(lambda: two.matches("ping") == ["default/echo"])
            quiet = one.engine.book.prepare(
                "default", "admin", name="quiet", text="on tick do emit tock"
            )
            await one.store.repos.rules.put(quiet.stored, 1.0)  # no notification
            await one.store.repos.rules.delete("default", "echo")
            async with one.store.transaction() as uow:
                await uow.notify("rules", "*")
            await eventually(lambda: two.matches("tick") == ["default/quiet"])
            await eventually(lambda: two.matches("ping") == [])

    run(body)


def test_a_timer_falling_due_is_fired_by_one_process_only(make_store: StoreFactory) -> None:
    async def body() -> None:
        async with two_processes(make_store) as (one, two):
            await one.define("on heat where celsius > 30 for 10m do emit alert", "hot")
            await eventually(lambda: two.matches("heat") == ["default/hot"])
            for i in range(5):  # one timer per sensor
                event = CloudEvent(source=f"s{i}", type="heat", id=f"h{i}", data={"celsius": 40})
                await one.bus.append([event])
            await one.dispatcher.catch_up()
            clock = one.engine.clock
            assert isinstance(clock, ManualClock)
            clock.advance(600)
            handled = await asyncio.gather(
                one.engine.fire_due_timers(), two.engine.fire_due_timers()
            )
            assert sum(handled) >= 5
            sql = one.store.database.sql
            fired = await sql.fetch_value(
                "SELECT COUNT(*) FROM rule_enforcements WHERE stage = 'timer' AND outcome = 'fired'"
            )
            assert fired == 5
            assert await sql.fetch_value("SELECT COUNT(*) FROM action_jobs") == 5
            assert await one.engine.next_timer_due() is None

    run(body)
