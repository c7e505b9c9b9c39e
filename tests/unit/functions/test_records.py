"""Group commit of invocation records: one transaction per loop iteration, durable on return."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite_functions import FunctionRepository
from ondo.functions.model import InvocationRecord
from ondo.functions.records import COMMIT_DELAY_S, RecordWriter


def _record(n: int) -> InvocationRecord:
    return InvocationRecord(
        id=f"inv-{n}",
        namespace="default",
        function="f",
        version=1,
        status="succeeded",
        mode="sync",
        created_at=float(n),
        result={"n": n},
        finished_at=float(n) + 0.5,
    )


def test_records_finishing_together_share_one_commit(tmp_path: Path) -> None:
    repo = FunctionRepository(SqliteDatabase(tmp_path / "s.db"))
    writer = RecordWriter(repo.record_many)

    async def main() -> None:
        await asyncio.gather(*(writer.write(_record(n)) for n in range(10)))
        await writer.write(_record(10), alone=True)

    asyncio.run(main())
    assert (writer.batches, writer.records) == (2, 11)
    found = repo.invocation("inv-7")
    assert found is not None and found.result == {"n": 7} and found.status == "succeeded"


def test_a_write_returns_only_once_its_record_is_readable(tmp_path: Path) -> None:
    repo = FunctionRepository(SqliteDatabase(tmp_path / "s.db"))
    writer = RecordWriter(repo.record_many)

    async def write_then_read(n: int) -> InvocationRecord | None:
        await writer.write(_record(n))
        return repo.invocation(f"inv-{n}")

    async def main() -> list[InvocationRecord | None]:
        return list(await asyncio.gather(*(write_then_read(n) for n in range(5))))

    assert [r.id if r else None for r in asyncio.run(main())] == [f"inv-{n}" for n in range(5)]


def test_a_failed_commit_fails_every_writer_of_the_batch(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "s.db")
    repo = FunctionRepository(db)
    writer = RecordWriter(repo.record_many)
    db.close()  # every statement now fails

    async def main() -> list[BaseException | None]:
        writes = (writer.write(_record(n)) for n in range(3))
        return list(await asyncio.gather(*writes, return_exceptions=True))

    outcomes = asyncio.run(main())
    assert all(isinstance(o, sqlite3.ProgrammingError) for o in outcomes), outcomes
    with pytest.raises(sqlite3.ProgrammingError):
        asyncio.run(writer.write(_record(9), alone=True))


def test_records_written_soon_share_the_iterations_commit_and_flush_makes_them_readable(
    tmp_path: Path,
) -> None:
    repo = FunctionRepository(SqliteDatabase(tmp_path / "s.db"))
    writer = RecordWriter(repo.record_many)

    async def main() -> tuple[InvocationRecord | None, InvocationRecord | None]:
        for n in range(4):
            writer.write_soon(_record(n))
        before = repo.invocation("inv-2")  # queued, not yet committed
        await asyncio.sleep(COMMIT_DELAY_S * 2)  # one group commit
        after = repo.invocation("inv-2")
        writer.write_soon(_record(9))
        writer.flush()  # what a reader does first
        return before, after if repo.invocation("inv-9") is not None else None

    before, after = asyncio.run(main())
    assert before is None and after is not None and after.result == {"n": 2}
    assert (writer.batches, writer.records) == (2, 5)


def test_a_failed_commit_of_records_written_soon_is_logged_with_their_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = SqliteDatabase(tmp_path / "s.db")
    writer = RecordWriter(FunctionRepository(db).record_many)
    db.close()

    async def main() -> None:
        writer.write_soon(_record(1))
        writer.write_soon(_record(2))
        await asyncio.sleep(COMMIT_DELAY_S * 2)

    with caplog.at_level("ERROR", logger="ondo.functions"):
        asyncio.run(main())
    assert "invocation records not written: inv-1, inv-2" in caplog.text


def test_a_waiting_writer_brings_the_delayed_commit_forward(tmp_path: Path) -> None:
    repo = FunctionRepository(SqliteDatabase(tmp_path / "s.db"))
    writer = RecordWriter(repo.record_many)

    async def main() -> None:
        writer.write_soon(_record(1))
        await writer.write(_record(2))  # durable on return, and record 1 with it

    asyncio.run(main())
    assert (writer.batches, writer.records) == (1, 2)
    assert repo.invocation("inv-1") is not None


def test_a_final_record_keeps_every_field_of_the_started_one() -> None:
    """_apply_outcome spells the record's fields out: a field added to InvocationRecord must
    not be dropped from final records without this failing."""
    import dataclasses

    from ondo.functions.service import _apply_outcome
    from ondo.runtime.base import InvocationOutcome

    started = InvocationRecord(
        id="inv-x",
        namespace="ns",
        function="f",
        version=3,
        status="running",
        mode="async",
        created_at=12.5,
        trigger="rule:r",
        attempt=2,
    )
    outcome = InvocationOutcome(
        "succeeded", b'{"a":1}', None, True, 1.5, 2.25, 30.0, "log", value={"a": 1}
    )
    final = _apply_outcome(started, outcome, 99.0)
    expected = dataclasses.replace(
        started,
        status="succeeded",
        cold=True,
        init_ms=1.5,
        duration_ms=2.25,
        max_memory_mb=30.0,
        result={"a": 1},
        result_json=b'{"a":1}',
        logs="log",
        finished_at=99.0,
    )
    for field in dataclasses.fields(InvocationRecord):
        assert getattr(final, field.name) == getattr(expected, field.name), field.name
    # A new field fails here first: add it above with a value other than its default.
    assert {f.name for f in dataclasses.fields(InvocationRecord)} == {
        "id", "namespace", "function", "version", "status", "mode", "created_at", "cold",
        "init_ms", "duration_ms", "max_memory_mb", "error", "result", "logs", "trigger",
        "finished_at", "attempt", "result_json",
    }  # fmt: skip
