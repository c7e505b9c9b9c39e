"""The action queue on a real SQLite store and a manual clock, with a scripted action kind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.queue import ActionQueue, backoff_delay
from ondo.clock import ManualClock
from ondo.config import QueueSettings
from ondo.platform import Platform
from tests.unit.actions import conftest
from tests.unit.actions.conftest import ScriptedKind, enqueue, job_of, request, until

SETTINGS = QueueSettings(workers=4, max_attempts=3, backoff_s=10.0, backoff_cap_s=1000.0)


def queue_of(platform: Platform, settings: QueueSettings = SETTINGS) -> ActionQueue:
    return conftest.queue_of(platform, settings)


def clock_of(platform: Platform) -> ManualClock:
    assert isinstance(platform.clock, ManualClock)
    return platform.clock


async def status(queue: ActionQueue, key: str) -> str | None:
    job = await job_of(queue.jobs, key)
    return job.status if job else None


def are(queue: ActionQueue, wanted: str | None, *keys: str) -> Callable[[], Awaitable[bool]]:
    """A condition for `until`: every job of `keys` has the status `wanted` (None: gone)."""

    async def check() -> bool:
        return all([await status(queue, k) == wanted for k in keys])

    return check


def calls_then(
    queue: ActionQueue, scripted: ScriptedKind, key: str, calls: int, wanted: str
) -> Callable[[], Awaitable[bool]]:
    """A condition for `until`: `key` was performed `calls` times and is now `wanted`."""

    async def check() -> bool:
        return scripted.count(key) == calls and await status(queue, key) == wanted

    return check


def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    settings = QueueSettings(backoff_s=1.0, backoff_factor=2.0, backoff_cap_s=5.0)
    assert [backoff_delay(n, settings, lambda: 1.0) for n in (1, 2, 3, 4, 9)] == [1, 2, 4, 5, 5]
    assert [backoff_delay(n, settings, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1, 2]
    assert 0.5 <= backoff_delay(1, settings) <= 1.0


def test_an_enqueued_action_is_performed_once_even_if_enqueued_twice(
    platform: Platform, scripted: ScriptedKind
) -> None:
    async def scenario() -> None:
        queue = queue_of(platform)
        await queue.start()
        await enqueue(queue, [request("k1"), request("k2")])
        await enqueue(queue, [request("k1")])
        await until(are(queue, "succeeded", "k1", "k2"))
        await enqueue(queue, [request("k1")])  # after it ran, too
        await asyncio.sleep(0.05)
        await queue.stop()
        assert scripted.count("k1") == 1 and scripted.count("k2") == 1
        assert (await queue.jobs_for("enf-k1"))[0]["result"] == {"call": 1}

    asyncio.run(scenario())


def test_a_failing_action_is_retried_with_backoff_then_dead_lettered(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.failures["k"] = 99

    async def scenario() -> None:
        clock = clock_of(platform)
        queue = queue_of(platform)
        await queue.start()
        started = clock.now()
        await enqueue(queue, [request("k")])
        await until(calls_then(queue, scripted, "k", 1, "pending"))
        job = await job_of(queue.jobs, "k")
        assert job is not None and job.attempts == 1
        assert started + 5.0 <= job.next_attempt_at <= started + 10.0  # 10 s base, jittered
        clock.advance(4.9)
        await asyncio.sleep(0.1)
        assert scripted.count("k") == 1  # not due yet
        clock.advance(5.2)
        await until(calls_then(queue, scripted, "k", 2, "pending"))
        job = await job_of(queue.jobs, "k")
        assert job is not None and job.next_attempt_at - clock.now() >= 10.0  # doubled: 20 s
        clock.advance(20.1)
        await until(are(queue, "dead", "k"))
        await queue.stop()
        assert [attempt for _, attempt in scripted.calls] == [1, 2, 3]
        dead = await queue.dead_letters("default")
        assert [j.key for j in dead] == ["k"] and dead[0].last_error == {"error": "failure 3"}
        metrics = platform.metrics.render().decode()
        assert 'ondo_actions_retried_total{kind="scripted"} 2.0' in metrics
        assert 'ondo_actions_dead_lettered_total{kind="scripted"} 1.0' in metrics

    asyncio.run(scenario())


def test_a_dead_letter_retried_runs_again_with_attempts_reset(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.failures["k"] = 2

    async def scenario() -> None:
        queue = queue_of(platform, replace(SETTINGS, max_attempts=1))
        await queue.start()
        await enqueue(queue, [request("k")])
        await until(are(queue, "dead", "k"))
        job = await job_of(queue.jobs, "k")
        assert job is not None
        assert await queue.retry_dead([job.id]) == 1
        await until(calls_then(queue, scripted, "k", 2, "dead"))
        assert await queue.retry_dead([job.id]) == 1
        await until(are(queue, "succeeded", "k"))
        await queue.stop()
        assert [attempt for _, attempt in scripted.calls] == [1, 2, 3]  # each attempt named anew
        assert await queue.retry_dead([job.id]) == 0  # succeeded jobs stay put

    asyncio.run(scenario())


def test_a_failure_that_retrying_cannot_fix_is_dead_lettered_at_once(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.failures["k"] = 1
    scripted.retryable = False

    async def scenario() -> None:
        queue = queue_of(platform)
        await queue.start()
        await enqueue(queue, [request("k")])
        await until(are(queue, "dead", "k"))
        await queue.stop()
        assert scripted.count("k") == 1

    asyncio.run(scenario())


def test_an_action_older_than_the_age_limit_is_given_up(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.failures["k"] = 99

    async def scenario() -> None:
        clock = clock_of(platform)
        queue = queue_of(platform, replace(SETTINGS, max_attempts=10, max_event_age_s=25.0))
        await queue.start()
        await enqueue(queue, [request("k")])
        await until(calls_then(queue, scripted, "k", 1, "pending"))
        clock.advance(40.0)  # the retry falls due only after the action is 40 s old
        await until(are(queue, "dead", "k"))
        await queue.stop()
        assert scripted.count("k") == 1
        job = await job_of(queue.jobs, "k")
        assert job is not None and "ONDO_ACTION_MAX_AGE" in job.last_error["error"]

    asyncio.run(scenario())


def test_no_retry_is_scheduled_past_the_age_limit(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.failures["k"] = 99

    async def scenario() -> None:
        # The first retry would wait at least 5 s (10 s base, jittered): past the 4 s limit.
        queue = queue_of(platform, replace(SETTINGS, max_attempts=10, max_event_age_s=4.0))
        await queue.start()
        await enqueue(queue, [request("k")])
        await until(are(queue, "dead", "k"))
        await queue.stop()
        job = await job_of(queue.jobs, "k")
        assert scripted.count("k") == 1
        assert job is not None and job.last_error == {"error": "failure 1"}

    asyncio.run(scenario())


def test_jobs_cut_off_by_a_crash_run_again_as_the_same_attempt(
    platform: Platform, scripted: ScriptedKind
) -> None:
    async def scenario() -> None:
        crashed = queue_of(platform)
        await enqueue(crashed, [request("a"), request("b"), request("c")])
        # What `kill -9` leaves behind: jobs claimed (running) whose outcome was never stored.
        claimed = await crashed.jobs.claim(platform.clock.now(), 2)
        assert {j.status for j in claimed} == {"running"}
        restarted = queue_of(platform)
        await restarted.start()
        await until(are(restarted, "succeeded", *"abc"))
        await restarted.stop()
        assert sorted(scripted.calls) == [("a", 1), ("b", 1), ("c", 1)]

    asyncio.run(scenario())


@dataclass
class FirstAwareKind(ScriptedKind):
    """Has `perform_first`: the queue calls it for attempts that never started before."""

    firsts: list[tuple[str, int]] = field(default_factory=list)

    async def perform_first(self, request: ActionRequest, attempt: int) -> ActionResult:
        self.firsts.append((request.key, attempt))
        return await self.perform(request, attempt)


def test_only_attempts_that_never_started_are_performed_as_first_ones(
    platform: Platform,
) -> None:
    kind = FirstAwareKind()
    platform.actions.kinds.add(kind)

    async def scenario() -> None:
        crashed = queue_of(platform)
        await enqueue(crashed, [request("a"), request("b"), request("c")])
        await crashed.jobs.claim(platform.clock.now(), 2)  # a and b: cut off by a crash
        restarted = queue_of(platform)
        await restarted.start()
        await until(are(restarted, "succeeded", *"abc"))
        await enqueue(restarted, [request("d")])
        await until(are(restarted, "succeeded", "d"))
        await restarted.stop()
        assert sorted(kind.calls) == [("a", 1), ("b", 1), ("c", 1), ("d", 1)]
        assert sorted(kind.firsts) == [("c", 1), ("d", 1)]

    asyncio.run(scenario())


def test_stop_waits_for_running_actions_and_leaves_the_rest_for_the_next_start(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.gate = asyncio.Event()

    async def scenario() -> None:
        queue = queue_of(platform, replace(SETTINGS, workers=1, stop_grace_s=0.05))
        await queue.start()
        await enqueue(queue, [request("a"), request("b")])
        await until(lambda: scripted.count("a") == 1)
        await queue.stop()  # a is cut off after the grace; b never started
        # A clean stop puts a back to pending as the same attempt (it is not a crash).
        assert await are(queue, "pending", "a", "b")()
        assert scripted.gate is not None
        scripted.gate.set()
        again = queue_of(platform)
        await again.start()
        await until(are(again, "succeeded", "a", "b"))
        await again.stop()
        assert sorted(scripted.calls) == [("a", 1), ("a", 1), ("b", 1)]

    asyncio.run(scenario())


@pytest.mark.parametrize("workers", [1, 8])
def test_many_actions_complete_exactly_once(
    platform: Platform, scripted: ScriptedKind, workers: int
) -> None:
    keys = [f"k{i}" for i in range(300)]
    for key in keys[::7]:
        scripted.failures[key] = 1

    async def scenario() -> None:
        queue = queue_of(platform, replace(SETTINGS, workers=workers, backoff_s=0.001))
        await queue.start()
        for start in range(0, len(keys), 50):
            await enqueue(queue, [request(k) for k in keys[start : start + 50]])
        clock = clock_of(platform)

        async def all_succeeded() -> bool:
            clock.advance(0.01)  # lets the retries fall due
            return await queue.jobs.counts() == {"succeeded": len(keys)}

        await until(all_succeeded)
        await queue.stop()
        assert all(scripted.count(k) == 1 + scripted.failures.get(k, 0) for k in keys)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("all", ["ondo.action.succeeded", "ondo.action.failed"]),
        ("failed", ["ondo.action.failed"]),
        ("none", []),
    ],
)
def test_outcomes_become_destination_events_as_configured(
    platform: Platform, scripted: ScriptedKind, wanted: str, expected: list[str]
) -> None:
    scripted.destinations = True
    scripted.failures["bad"] = 99

    async def scenario() -> None:
        settings = replace(SETTINGS, max_attempts=1, destinations=wanted)
        queue = queue_of(platform, settings)
        await queue.start()
        await enqueue(queue, [request("good")])
        await until(are(queue, "succeeded", "good"))
        await enqueue(queue, [request("bad")])
        await until(are(queue, "dead", "bad"))
        await queue.stop()
        events = [s.event for s in await platform.bus.tail(10)]
        assert [e.type for e in events] == expected
        for event in events:
            assert event.source == "ondo/rules/r1" and event.data["rule"] == "r1"

    asyncio.run(scenario())


def test_finished_jobs_are_forgotten_after_the_retention(
    platform: Platform, scripted: ScriptedKind
) -> None:
    async def scenario() -> None:
        clock = clock_of(platform)
        queue = queue_of(platform)
        await queue.start()
        await enqueue(queue, [request("old")])
        await until(are(queue, "succeeded", "old"))
        await enqueue(queue, [request("new")])
        await until(are(queue, "succeeded", "new"))
        clock.advance(7 * 86400.0 - 1)  # the retention of finished jobs: 7 days
        assert (await platform.retention.sweep())["action_jobs"] == 0
        clock.advance(2.0)
        assert (await platform.retention.sweep())["action_jobs"] == 2
        assert await are(queue, None, "old", "new")()
        await queue.stop()

    asyncio.run(scenario())


def test_a_full_lane_leaves_the_workers_to_other_lanes(
    platform: Platform, scripted: ScriptedKind
) -> None:
    scripted.limits["slow"] = 2
    scripted.gates["slow"] = asyncio.Event()
    slow = [f"slow{i}" for i in range(10)]
    fast = [f"fast{i}" for i in range(5)]

    async def scenario() -> None:
        queue = queue_of(platform, replace(SETTINGS, workers=4))
        await queue.start()
        await enqueue(queue, [request(k, target="slow") for k in slow])
        await enqueue(queue, [request(k, target="fast") for k in fast])
        await until(are(queue, "succeeded", *fast))
        # Only as many slow jobs as the lane allows were started; the rest wait, pending.
        assert sum(scripted.count(k) for k in slow) == 2
        found = sorted([await status(queue, k) or "" for k in slow])
        assert found == ["pending"] * 8 + ["running"] * 2
        scripted.gates["slow"].set()
        await until(are(queue, "succeeded", *slow))
        await queue.stop()
        assert all(scripted.count(k) == 1 for k in slow + fast)

    asyncio.run(scenario())


def test_jobs_behind_a_long_full_lane_are_found(platform: Platform, scripted: ScriptedKind) -> None:
    scripted.limits["slow"] = 1
    scripted.gates["slow"] = asyncio.Event()
    slow = [f"slow{i}" for i in range(150)]  # more than one look at the due jobs holds

    async def scenario() -> None:
        queue = queue_of(platform, replace(SETTINGS, workers=2))
        await queue.start()
        await enqueue(queue, [request(k, target="slow") for k in slow])
        await enqueue(queue, [request(f"fast{i}", target="fast") for i in range(3)])
        await until(are(queue, "succeeded", *(f"fast{i}" for i in range(3))))
        assert sum(scripted.count(k) for k in slow) == 1
        scripted.gates["slow"].set()

        async def all_done() -> bool:
            return (await queue.counts())["succeeded"] == 153

        await until(all_done)
        await queue.stop()

    asyncio.run(scenario())


def test_jobs_enqueued_in_a_unit_of_work_run_once_it_commits_and_not_if_it_rolls_back(
    platform: Platform, scripted: ScriptedKind
) -> None:
    async def scenario() -> None:
        queue = queue_of(platform)
        await queue.start()
        try:
            async with platform.store.transaction() as uow:
                await queue.enqueue_in(uow, [request("undone")])
                raise LookupError("the decision failed")
        except LookupError:
            pass
        async with platform.store.transaction() as uow:
            await queue.enqueue_in(uow, [request("k1"), request("k2")])
            await queue.enqueue_in(uow, [request("k1")])
        await until(are(queue, "succeeded", "k1", "k2"))
        await queue.stop()
        assert sorted(scripted.calls) == [("k1", 1), ("k2", 1)]
        assert await status(queue, "undone") is None

    asyncio.run(scenario())
