"""The action job repository contract, on SQLite and PostgreSQL: dedup, claiming (never one job
by two claimers), retries, the DLQ, crash recovery, lanes and pruning."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ondo.backends.store import Store
from ondo.backends.store.repositories.actions import (
    Job,
    JobRepository,
    LaneClaim,
    NewJob,
    Outcome,
)
from tests.unit.store.conftest import StoreFactory


def new_job(
    key: str, *, max_attempts: int = 3, enforcement: str | None = None, lane: str = ""
) -> NewJob:
    return NewJob(
        key=key,
        namespace="default",
        rule="r1",
        action_index=0,
        kind="invoke",
        enforcement_id=enforcement or f"enf-{key}",
        event_source="test/src",
        event_id=f"ev-{key}",
        max_attempts=max_attempts,
        request="{}",
        lane=lane,
    )


def run(make_store: StoreFactory, body: Callable[[Store, JobRepository], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await body(store, store.repos.jobs)
        finally:
            await store.close()

    asyncio.run(main())


async def insert(store: Store, jobs: list[NewJob], now: float) -> int:
    """As the rules engine does: inside its unit of work."""
    async with store.transaction() as uow:
        return await uow.jobs.insert(jobs, now)


async def job_of(jobs: JobRepository, key: str) -> Job | None:
    return next((j for j in await jobs.by_enforcement(f"enf-{key}") if j.key == key), None)


async def settle(jobs: JobRepository, job: Job, now: float, status: str, **kw: Any) -> None:
    inv = kw.pop("inv", None)
    await jobs.settle([Outcome(job.id, status, job.invocations_with(inv), **kw)], now)


def keys(found: Sequence[Job]) -> list[str]:
    return [j.key for j in found]


def test_a_key_seen_before_is_ignored(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        assert await insert(store, [new_job("k1"), new_job("k2")], now=100.0) == 2
        assert await insert(store, [new_job("k1"), new_job("k3"), new_job("k3")], now=101.0) == 1
        assert await jobs.counts() == {"pending": 3}
        first = await job_of(jobs, "k1")
        assert first is not None and first.created_at == 100.0 and first.status == "pending"

    run(make_store, body)


def test_jobs_roll_back_with_the_unit_of_work_that_made_them(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        try:
            async with store.transaction() as uow:
                await uow.jobs.insert([new_job("a")], 1.0)
                raise LookupError("the decision failed")
        except LookupError:
            pass
        assert await jobs.counts() == {}

    run(make_store, body)


def test_only_due_jobs_are_claimed_and_each_once(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a"), new_job("b")], now=10.0)
        await insert(store, [new_job("later")], now=20.0)
        first = await jobs.claim(10.0, 1)
        second = await jobs.claim(10.0, 5)
        assert keys(first) == ["a"] and keys(second) == ["b"]
        assert await jobs.claim(10.0, 5) == []
        assert first[0].status == "running" and (first[0].attempts, first[0].attempt_seq) == (1, 1)
        assert await jobs.claim(10.0, 0) == []

    run(make_store, body)


def test_a_retry_waits_for_its_time(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a")], now=10.0)
        job = (await jobs.claim(10.0, 1))[0]
        await settle(jobs, job, 11.0, "pending", when=15.0, inv="inv-1", error={"error": "boom"})
        assert await jobs.claim(14.9, 5) == []
        assert await jobs.next_due_at() == 15.0
        assert await jobs.next_due_at(skip_lanes=[""]) is None
        again = await jobs.claim(15.0, 5)
        assert [j.attempts for j in again] == [2]
        assert again[0].last_error == {"error": "boom"} and again[0].invocation_ids == ["inv-1"]

    run(make_store, body)


def test_dead_jobs_are_listed_retried_with_attempts_reset_or_discarded(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a"), new_job("b")], now=1.0)
        a, b = await jobs.claim(1.0, 2)
        await settle(jobs, a, 2.0, "dead", inv="inv-a", error={"error": "still failing"})
        await settle(jobs, b, 2.0, "dead", error={"error": "nope"})
        assert keys(await jobs.dead("default")) == ["a", "b"]
        assert keys(await jobs.dead("default", limit=1, after_id=a.id)) == ["b"]
        assert await jobs.dead("other") == []
        assert await jobs.revive([a.id], now=3.0) == 1
        assert await jobs.revive([a.id], now=3.0) == 0  # no longer dead
        revived = await jobs.claim(3.0, 5)
        assert [(j.key, j.attempts, j.attempt_seq) for j in revived] == [("a", 1, 2)]
        assert await jobs.discard(b.id, 4.0) is True
        assert await jobs.discard(b.id, 4.0) is False
        assert await jobs.dead("default") == []
        found = await jobs.get(b.id)
        assert found is not None and found.status == "discarded"
        assert await jobs.get(10_000) is None

    run(make_store, body)


def test_running_jobs_go_back_to_pending_as_the_same_attempt(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a"), new_job("b")], now=1.0)
        a, _b = await jobs.claim(1.0, 2)
        await settle(jobs, a, 2.0, "succeeded", inv="inv-a", result={"ok": 1})
        assert await jobs.recover_running(now=5.0) == (1, [])  # only b was still running
        again = await jobs.claim(5.0, 5)
        assert [(j.key, j.attempts, j.attempt_seq) for j in again] == [("b", 1, 1)]
        done = await jobs.get(a.id)
        assert done is not None and done.status == "succeeded" and done.result == {"ok": 1}
        assert done.finished_at == 2.0

    run(make_store, body)


def test_a_job_running_at_two_starts_in_a_row_is_dead_lettered(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a"), new_job("b")], now=1.0)
        await jobs.claim(1.0, 2)
        assert await jobs.recover_running(now=2.0) == (2, [])  # the first crash: both run again
        a, _b = await jobs.claim(2.0, 2)
        await settle(jobs, a, 3.0, "pending", when=4.0, inv="inv-a", error={"error": "x"})
        a = (await jobs.claim(4.0, 1))[0]  # a finished an attempt since
        resumed, dead = await jobs.recover_running(now=5.0)  # the second: b never finished
        assert resumed == 1 and keys(dead) == ["b"]
        assert dead[0].status == "dead" and dead[0].last_error["reason"] == "platform_crash"
        found = await jobs.get(a.id)
        assert found is not None and found.status == "pending"

    run(make_store, body)


def test_a_start_takes_back_its_own_running_jobs_only(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("mine"), new_job("theirs"), new_job("legacy")], now=1.0)
        assert keys(await jobs.claim(1.0, 1, owner="host:/a")) == ["mine"]
        assert keys(await jobs.claim(1.0, 1, owner="host:/b")) == ["theirs"]
        assert keys(await jobs.claim(1.0, 1)) == ["legacy"]  # as versions without owners did
        assert await jobs.recover_running(2.0, "host:/a") == (2, [])
        found = {k: (await job_of(jobs, k)) for k in ("mine", "theirs", "legacy")}
        assert {k: j.status for k, j in found.items() if j} == {
            "mine": "pending",
            "theirs": "running",
            "legacy": "pending",
        }

    run(make_store, body)


def test_jobs_a_clean_stop_cut_off_run_again_without_counting_as_a_crash(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a")], now=1.0)
        a = (await jobs.claim(1.0, 1))[0]
        await jobs.requeue([a.id], 2.0)
        a = (await jobs.claim(2.0, 1))[0]
        assert (a.attempts, a.attempt_seq) == (1, 1)
        assert await jobs.recover_running(now=3.0) == (1, [])  # a crash after that: the first

    run(make_store, body)


def test_only_an_attempt_a_stop_or_crash_cut_off_is_claimed_as_resumed(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a"), new_job("b"), new_job("c")], now=1.0)
        a, b, c = await jobs.claim(1.0, 3)
        assert not (a.resumed or b.resumed or c.resumed)  # first attempts
        await settle(jobs, c, 1.5, "pending", when=1.5, error={"error": "x"})
        await jobs.requeue([a.id], 2.0)  # a clean stop cut a off
        assert await jobs.recover_running(now=2.0) == (1, [])  # a crash cut b off
        again = {j.key: j for j in await jobs.claim(2.0, 3)}
        assert {k: j.resumed for k, j in again.items()} == {"a": True, "b": True, "c": False}
        await settle(jobs, again["a"], 3.0, "pending", when=3.0, error={"error": "x"})
        await settle(jobs, again["b"], 3.0, "succeeded")
        assert [(j.key, j.resumed) for j in await jobs.claim(3.0, 3)] == [("a", False)]
        found = await jobs.get(b.id)
        assert found is not None and not found.resumed

    run(make_store, body)


def test_jobs_are_found_by_enforcement(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a", enforcement="e1"), new_job("b", enforcement="e2")], 1.0)
        assert keys(await jobs.by_enforcement("e1")) == ["a"]
        assert await jobs.by_enforcement("missing") == []

    run(make_store, body)


def test_invocation_ids_accumulate_without_repeats(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        await insert(store, [new_job("a")], now=1.0)
        job = (await jobs.claim(1.0, 1))[0]
        await settle(jobs, job, 1.0, "pending", when=1.0, inv="inv-1", error={"error": "x"})
        job = (await jobs.claim(1.0, 1))[0]
        await settle(jobs, job, 1.0, "pending", when=1.0, inv="inv-1", error={"error": "x"})
        job = (await jobs.claim(1.0, 1))[0]
        await settle(jobs, job, 2.0, "dead", inv="inv-2", error={"error": "y"})
        found = await jobs.get(job.id)
        assert found is not None and found.invocation_ids == ["inv-1", "inv-2"]
        assert found.finished_at == 2.0 and found.last_error == {"error": "y"}

    run(make_store, body)


def test_a_lane_is_never_claimed_past_its_allowance(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        slow = [new_job(f"slow{i}", lane="slow") for i in range(100)]
        await insert(store, slow, now=1.0)
        await insert(store, [new_job(f"fast{i}", lane="fast") for i in range(3)], now=2.0)
        lanes = LaneClaim({"": 10, "slow": 2}, new_lane=1, look_past_full=False)
        first = await jobs.claim(5.0, 10, lanes)
        # The slow lane's two, and nothing else: the fast jobs sit behind the first window.
        assert keys(first) == ["slow0", "slow1"]
        lanes = LaneClaim({"": 10, "slow": 0, "fast": 2}, look_past_full=True)
        behind = await jobs.claim(5.0, 10, lanes)
        assert keys(behind) == ["fast0", "fast1"]
        new_lane = LaneClaim({"": 10, "slow": 0})  # fast unknown: one to learn its limit
        assert keys(await jobs.claim(5.0, 10, new_lane)) == ["fast2"]

    run(make_store, body)


def test_a_claim_in_one_statement_takes_each_lanes_first_jobs_up_to_its_allowance(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        lanes = ["a", "b", "c", "a", "", "c", "a", "b", "", "a"]
        await insert(store, [new_job(f"j{i}", lane=lane) for i, lane in enumerate(lanes)], 1.0)
        # a: 2 more may run, b: none, c: not known yet (new_lane), "": 1.
        claim = LaneClaim({"a": 2, "b": 0, "": 1}, new_lane=1, look_past_full=False)
        assert keys(await jobs.claim(2.0, 10, claim)) == ["j0", "j2", "j3", "j4"]
        assert keys(await jobs.claim(2.0, 2, claim)) == ["j5", "j6"]  # the limit, in due order
        assert keys(await jobs.claim(2.0, 10, LaneClaim({}, 0, look_past_full=False))) == []
        assert keys(await jobs.claim(2.0, 10, LaneClaim({}, 5, look_past_full=False))) == [
            "j1",
            "j7",
            "j8",
            "j9",
        ]

    run(make_store, body)


def test_queue_stats_and_counts_read_what_is_waiting(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        async_job = NewJob(**{**new_job("inv").__dict__, "kind": "invoke-async"})
        async_job = NewJob(**{**async_job.__dict__, "lane": "invoke:default/hello"})
        await insert(store, [new_job("a"), new_job("b"), async_job], now=3.0)
        await insert(store, [new_job("c")], now=1.0)
        c = (await jobs.claim(1.0, 1))[0]
        await settle(jobs, c, 2.0, "dead", error={"error": "x"})
        stats = await jobs.queue_stats()
        assert stats.counts == {"pending": 3, "running": 0, "dead": 1}
        assert stats.oldest_pending_created_at == 3.0
        assert stats.async_backlog == {("default", "hello"): 1}
        assert await jobs.counts() == {"pending": 3, "dead": 1}

    run(make_store, body)


def test_pruning_forgets_the_oldest_finished_jobs_only(make_store: StoreFactory) -> None:
    async def body(store: Store, jobs: JobRepository) -> None:
        names = ("ok", "dropped", "dead", "waiting", "old")
        await insert(store, [new_job(k) for k in names], now=1.0)
        ok, dropped, dead, _waiting, old = await jobs.claim(1.0, 5)
        await jobs.requeue([_waiting.id], 1.0)
        await settle(jobs, old, 2.0, "succeeded")
        await settle(jobs, ok, 3.0, "succeeded")
        await settle(jobs, dropped, 3.0, "dead", error={"error": "x"})
        await jobs.discard(dropped.id, 3.0)
        await settle(jobs, dead, 3.0, "dead", error={"error": "x"})
        recent = await insert(store, [new_job("recent")], now=1.0)
        assert recent == 1
        r = (await jobs.claim(1.0, 1))[0]
        await settle(jobs, r, 50.0, "succeeded")
        assert await jobs.prune(before=10.0, limit=1) == 1  # the oldest first
        assert await job_of(jobs, "old") is None
        assert await jobs.prune(before=10.0, limit=10) == 2
        assert await jobs.prune(before=10.0, limit=10) == 0
        left = {k: await job_of(jobs, k) is not None for k in (*names, "recent")}
        assert left == {
            "ok": False,
            "dropped": False,
            "dead": True,
            "waiting": True,
            "old": False,
            "recent": True,
        }

    run(make_store, body)


def test_two_claimers_on_one_database_never_claim_the_same_job(make_store: StoreFactory) -> None:
    """Two views (two processes' pools on PostgreSQL), four claimers each, racing for 400 jobs
    with and without lanes: every job is claimed exactly once."""

    async def body(store: Store, jobs: JobRepository) -> None:
        other = await make_store() if store.dialect == "postgres" else store
        try:
            await insert(store, [new_job(f"k{i}", lane=f"l{i % 3}") for i in range(400)], 1.0)
            claimed: list[int] = []

            async def claimer(view: Store, lanes: LaneClaim | None) -> None:
                while True:
                    async with view.transaction() as uow:
                        got = await uow.jobs.claim(2.0, 7, lanes)
                    if not got:
                        return
                    claimed.extend(j.id for j in got)
                    await asyncio.sleep(0)

            lanes = LaneClaim({"": 100, "l0": 5, "l1": 5, "l2": 5})
            at_once = LaneClaim({"": 100, "l0": 5, "l1": 5, "l2": 5}, look_past_full=False)
            views = [store, other] * 4
            kinds = (None, lanes, at_once)
            await asyncio.gather(*(claimer(v, kinds[i % 3]) for i, v in enumerate(views)))
            assert len(claimed) == 400 and len(set(claimed)) == 400
            assert await jobs.counts() == {"running": 400}
        finally:
            if other is not store:
                await other.close()

    run(make_store, body)
