"""Group commit of invocation records: one transaction per loop iteration, durable on return."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from ondo.backends.store import Store, open_store
from ondo.errors import StoreError
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


def writer_of(store: Store) -> RecordWriter:
    """As FunctionService writes its batches: one transaction each (one record: autocommit)."""

    async def write_many(records: Sequence[InvocationRecord]) -> None:
        if len(records) == 1:
            await store.repos.invocations.record_many(records)
            return
        async with store.transaction() as uow:
            await uow.invocations.record_many(records)

    return RecordWriter(write_many)


def with_store(tmp_path: Path, body: Callable[[Store], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 's.db'}")
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


async def _found(store: Store, n: int) -> InvocationRecord | None:
    return await store.repos.invocations.invocation(f"inv-{n}")


def test_records_finishing_together_share_one_commit(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)
        await asyncio.gather(*(writer.write(_record(n)) for n in range(10)))
        await writer.write(_record(10), alone=True)
        assert (writer.batches, writer.records) == (2, 11)
        found = await _found(store, 7)
        assert found is not None and found.result == {"n": 7} and found.status == "succeeded"

    with_store(tmp_path, body)


def test_a_write_returns_only_once_its_record_is_readable(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)

        async def write_then_read(n: int) -> InvocationRecord | None:
            await writer.write(_record(n))
            return await _found(store, n)

        found = await asyncio.gather(*(write_then_read(n) for n in range(5)))
        assert [r.id if r else None for r in found] == [f"inv-{n}" for n in range(5)]

    with_store(tmp_path, body)


def test_a_failed_commit_fails_every_writer_of_the_batch(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)
        await store.close()  # every statement now fails
        writes = (writer.write(_record(n)) for n in range(3))
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
        assert all(isinstance(o, StoreError) for o in outcomes), outcomes
        assert len({type(o) for o in outcomes}) == 1  # the one commit's failure, to each
        with pytest.raises(StoreError):
            await writer.write(_record(9), alone=True)

    with_store(tmp_path, body)


def test_records_written_soon_share_the_iterations_commit_and_flush_makes_them_readable(
    tmp_path: Path,
) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)
        for n in range(4):
            writer.write_soon(_record(n))
        assert await _found(store, 2) is None  # queued, not yet committed
        await asyncio.sleep(COMMIT_DELAY_S * 2)  # one group commit
        await writer.flush()  # (waits for the commit under way, if the loop was slow)
        after = await _found(store, 2)
        assert after is not None and after.result == {"n": 2}
        writer.write_soon(_record(9))
        await writer.flush()  # what a reader does first
        assert await _found(store, 9) is not None
        assert (writer.batches, writer.records) == (2, 5)

    with_store(tmp_path, body)


def test_a_failed_commit_of_records_written_soon_is_logged_with_their_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)
        await store.close()
        writer.write_soon(_record(1))
        writer.write_soon(_record(2))
        await writer.flush()

    with caplog.at_level("ERROR", logger="ondo.functions"):
        with_store(tmp_path, body)
    assert "invocation records not written: inv-1, inv-2" in caplog.text


def test_a_waiting_writer_brings_the_delayed_commit_forward(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        writer = writer_of(store)
        writer.write_soon(_record(1))
        await writer.write(_record(2))  # durable on return, and record 1 with it
        assert (writer.batches, writer.records) == (1, 2)
        assert await _found(store, 1) is not None

    with_store(tmp_path, body)


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
