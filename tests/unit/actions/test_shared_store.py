"""Two action queues on one PostgreSQL (two processes' views of one store): every job runs once
per attempt, never twice, whichever queue claims it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from ondo.actions.base import ActionKinds, ActionRequest, ActionResult
from ondo.actions.queue import ActionQueue
from ondo.backends.bus.base import AppendResult
from ondo.backends.store import Store, open_store
from ondo.clock import ManualClock
from ondo.config import QueueSettings
from ondo.events import CloudEvent
from tests.services import require_postgres, unique_cluster
from tests.unit.actions.conftest import ScriptedKind, enqueue, job_of, request, until
from tests.unit.store.conftest import drop_schema

SETTINGS = QueueSettings(workers=8, max_attempts=3, backoff_s=0.001, destinations="none")


class Counted(ScriptedKind):
    """The shared scripted kind as one queue performs it: counts that queue's attempts."""

    def __init__(self, shared: ScriptedKind) -> None:
        super().__init__(failures=shared.failures, calls=shared.calls)
        self.mine = 0

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        self.mine += 1
        return await super().perform(request, attempt)


async def no_events(event: CloudEvent, namespace: str) -> AppendResult:
    raise AssertionError(f"no destination event expected, got {event.type}")


@pytest.fixture
def postgres() -> Iterator[tuple[str, str]]:
    url, cluster = require_postgres(), unique_cluster()
    yield url, cluster
    asyncio.run(drop_schema(url, cluster))


def test_a_queue_starting_leaves_the_jobs_another_queue_runs_alone(
    postgres: tuple[str, str],
) -> None:
    url, cluster = postgres
    kind = ScriptedKind(gate=asyncio.Event())
    clock = ManualClock()

    async def scenario() -> None:
        stores: list[Store] = [open_store(url, cluster=cluster) for _ in range(2)]
        for store in stores:
            await store.open()
        first, second = (
            ActionQueue(
                store,
                ActionKinds([kind]),
                clock,
                CollectorRegistry(),
                no_events,
                SETTINGS,
                owner=f"host:/data{i}",
            )
            for i, store in enumerate(stores)
        )
        try:
            await first.start()
            await enqueue(first, [request("slow")])
            await until(lambda: kind.count("slow") == 1)
            await second.start()  # a crash recovery of its own: must not take `slow` back
            job = await job_of(second.jobs, "slow")
            assert job is not None and job.status == "running"
            assert kind.gate is not None
            kind.gate.set()

            async def done() -> bool:
                found = await job_of(first.jobs, "slow")
                return found is not None and found.status == "succeeded"

            await until(done)
        finally:
            for queue in (first, second):
                await queue.stop()
            for store in stores:
                await store.close()
        assert kind.calls == [("slow", 1)]

    asyncio.run(scenario())


def test_two_queues_on_one_postgresql_never_run_a_job_twice(
    postgres: tuple[str, str],
) -> None:
    url, cluster = postgres
    keys = [f"k{i}" for i in range(300)]
    kind = ScriptedKind(failures={key: 1 for key in keys[::5]})  # one shared record of calls
    clock = ManualClock()

    async def scenario() -> None:
        stores: list[Store] = [open_store(url, cluster=cluster) for _ in range(2)]
        for store in stores:
            await store.open()
        counted = [Counted(kind) for _ in stores]
        queues = [
            ActionQueue(
                store,
                ActionKinds([counted[i]]),
                clock,
                CollectorRegistry(),
                no_events,
                replace(SETTINGS, workers=4 + 4 * i),
            )
            for i, store in enumerate(stores)
        ]
        try:
            for queue in queues:
                await queue.start()
            for start in range(0, len(keys), 30):  # through either process, in turns
                chunk = keys[start : start + 30]
                await enqueue(queues[start // 30 % 2], [request(k) for k in chunk])

            async def all_succeeded() -> bool:
                clock.advance(0.01)  # lets the retries fall due
                return await queues[0].jobs.counts() == {"succeeded": len(keys)}

            await until(all_succeeded, timeout=60.0)
        finally:
            for queue in queues:
                await queue.stop()
            for store in stores:
                await store.close()
        attempts = sorted(kind.calls)
        assert len(attempts) == len(set(attempts)), "an attempt ran twice"
        assert all(kind.count(k) == 1 + kind.failures.get(k, 0) for k in keys)
        assert all(c.mine > 0 for c in counted), "one queue did all the work: nothing raced"

    asyncio.run(scenario())
