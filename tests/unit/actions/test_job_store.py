"""The action job table on a real SQLite file: dedup, claiming, retries, DLQ, crash recovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite_actions import ActionJobRepository, Job, NewJob, Outcome
from tests.unit.actions.conftest import job_of


def new_job(key: str, *, max_attempts: int = 3, enforcement: str | None = None) -> NewJob:
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
    )


# The queue's transitions, each as the queue makes it: through settle_and_claim.


def insert(repo: ActionJobRepository, jobs: list[NewJob], now: float) -> int:
    with repo.db.transaction() as conn:
        return repo.insert_in(conn, jobs, now)


def claim_due(repo: ActionJobRepository, now: float, limit: int) -> list[Job]:
    return repo.settle_and_claim((), now, limit)


def succeed(
    repo: ActionJobRepository, job_id: int, now: float, inv: str | None, result: Any
) -> None:
    repo.settle_and_claim([Outcome(job_id, "succeeded", inv, result=result)], now, 0)


def bury(repo: ActionJobRepository, job_id: int, now: float, inv: str | None, error: Any) -> None:
    repo.settle_and_claim([Outcome(job_id, "dead", inv, error=error)], now, 0)


def retry_at(
    repo: ActionJobRepository, job_id: int, now: float, when: float, inv: str | None, error: Any
) -> None:
    repo.settle_and_claim([Outcome(job_id, "pending", inv, error=error, when=when)], now, 0)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[ActionJobRepository]:
    db = SqliteDatabase(tmp_path / "ondo.db")
    yield ActionJobRepository(db)
    db.close()


def test_a_key_seen_before_is_ignored(repo: ActionJobRepository) -> None:
    assert insert(repo, [new_job("k1"), new_job("k2")], now=100.0) == 2
    assert insert(repo, [new_job("k1"), new_job("k3")], now=101.0) == 1
    assert repo.counts() == {"pending": 3}
    assert job_of(repo, "k1") is not None and job_of(repo, "k1").created_at == 100.0  # type: ignore[union-attr]


def test_only_due_jobs_are_claimed_and_each_once(repo: ActionJobRepository) -> None:
    insert(repo, [new_job("a"), new_job("b")], now=10.0)
    first = claim_due(repo, now=10.0, limit=1)
    second = claim_due(repo, now=10.0, limit=5)
    assert [j.key for j in first] == ["a"] and [j.key for j in second] == ["b"]
    assert claim_due(repo, now=10.0, limit=5) == []
    assert first[0].status == "running" and first[0].attempts == 1 and first[0].attempt_seq == 1


def test_a_retry_waits_for_its_time(repo: ActionJobRepository) -> None:
    insert(repo, [new_job("a")], now=10.0)
    job = claim_due(repo, 10.0, 1)[0]
    retry_at(repo, job.id, now=11.0, when=15.0, inv="inv-1", error={"error": "boom"})
    assert claim_due(repo, 14.9, 5) == []
    assert repo.next_due_at() == 15.0
    again = claim_due(repo, 15.0, 5)
    assert [j.attempts for j in again] == [2]
    assert again[0].last_error == {"error": "boom"} and again[0].invocation_ids == ["inv-1"]


def test_dead_jobs_are_listed_retried_with_attempts_reset_or_discarded(
    repo: ActionJobRepository,
) -> None:
    insert(repo, [new_job("a"), new_job("b")], now=1.0)
    a, b = claim_due(repo, 1.0, 2)
    bury(repo, a.id, 2.0, "inv-a", {"error": "still failing"})
    bury(repo, b.id, 2.0, None, {"error": "nope"})
    assert [j.key for j in repo.dead("default")] == ["a", "b"]
    assert repo.dead("other") == []
    assert repo.revive([a.id], now=3.0) == 1
    assert repo.revive([a.id], now=3.0) == 0  # no longer dead
    revived = claim_due(repo, 3.0, 5)
    assert [(j.key, j.attempts, j.attempt_seq) for j in revived] == [("a", 1, 2)]
    assert repo.discard(b.id, 4.0) is True
    assert repo.discard(b.id, 4.0) is False
    assert repo.dead("default") == []
    assert repo.get(b.id).status == "discarded"  # type: ignore[union-attr]


def test_running_jobs_go_back_to_pending_as_the_same_attempt(repo: ActionJobRepository) -> None:
    insert(repo, [new_job("a"), new_job("b")], now=1.0)
    a, _b = claim_due(repo, 1.0, 2)
    succeed(repo, a.id, 2.0, "inv-a", {"ok": 1})
    assert repo.recover_running(now=5.0) == (1, [])  # only b was still running
    again = claim_due(repo, 5.0, 5)
    assert [(j.key, j.attempts, j.attempt_seq) for j in again] == [("b", 1, 1)]
    assert repo.get(a.id).status == "succeeded"  # type: ignore[union-attr]


def test_a_job_running_at_two_starts_in_a_row_is_dead_lettered(
    repo: ActionJobRepository,
) -> None:
    insert(repo, [new_job("a"), new_job("b")], now=1.0)
    claim_due(repo, 1.0, 2)
    assert repo.recover_running(now=2.0) == (2, [])  # the first crash: both run again
    a, _b = claim_due(repo, 2.0, 2)
    retry_at(repo, a.id, 3.0, 4.0, "inv-a", {"error": "x"})  # a finished an attempt since
    a = claim_due(repo, 4.0, 1)[0]
    resumed, dead = repo.recover_running(now=5.0)  # the second crash: b never finished
    assert resumed == 1 and [j.key for j in dead] == ["b"]
    assert dead[0].status == "dead" and dead[0].last_error["reason"] == "platform_crash"
    assert repo.get(a.id).status == "pending"  # type: ignore[union-attr]


def test_jobs_a_clean_stop_cut_off_run_again_without_counting_as_a_crash(
    repo: ActionJobRepository,
) -> None:
    insert(repo, [new_job("a")], now=1.0)
    a = claim_due(repo, 1.0, 1)[0]
    repo.requeue([a.id], 2.0)
    a = claim_due(repo, 2.0, 1)[0]
    assert (a.attempts, a.attempt_seq) == (1, 1)
    assert repo.recover_running(now=3.0) == (1, [])  # a crash after that is the first one


def test_jobs_are_found_by_enforcement(repo: ActionJobRepository) -> None:
    insert(repo, [new_job("a", enforcement="e1"), new_job("b", enforcement="e2")], now=1.0)
    assert [j.key for j in repo.by_enforcement("e1")] == ["a"]
    assert repo.by_enforcement("missing") == []


def test_invocation_ids_accumulate_without_repeats(repo: ActionJobRepository) -> None:
    insert(repo, [new_job("a")], now=1.0)
    job = claim_due(repo, 1.0, 1)[0]
    retry_at(repo, job.id, 1.0, 1.0, "inv-1", {"error": "x"})
    job = claim_due(repo, 1.0, 1)[0]
    retry_at(repo, job.id, 1.0, 1.0, "inv-1", {"error": "x"})
    job = claim_due(repo, 1.0, 1)[0]
    bury(repo, job.id, 2.0, "inv-2", {"error": "y"})
    found = repo.get(job.id)
    assert found is not None and found.invocation_ids == ["inv-1", "inv-2"]
    assert found.finished_at == 2.0 and found.last_error == {"error": "y"}


def test_pruning_forgets_old_finished_jobs_only(repo: ActionJobRepository) -> None:
    insert(repo, [new_job(k) for k in ("ok", "dropped", "dead", "waiting", "recent")], now=1.0)
    ok, dropped, dead, _waiting = claim_due(repo, 1.0, 4)
    succeed(repo, ok.id, 2.0, None, None)
    bury(repo, dropped.id, 2.0, None, {"error": "x"})
    repo.discard(dropped.id, 2.0)
    bury(repo, dead.id, 2.0, None, {"error": "x"})
    recent = claim_due(repo, 1.0, 1)[0]
    succeed(repo, recent.id, 50.0, None, None)
    assert repo.prune(finished_before=10.0) == 2
    assert job_of(repo, "ok") is None and job_of(repo, "dropped") is None
    assert {k: job_of(repo, k) is not None for k in ("dead", "waiting", "recent")} == {
        "dead": True,
        "waiting": True,
        "recent": True,
    }
