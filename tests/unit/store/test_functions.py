"""The functions and invocations repositories' contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from ondo.backends.store import Store
from ondo.backends.store.repositories.functions import (
    FunctionConfig,
    FunctionVersion,
    InvocationRecord,
)
from ondo.errors import DuplicateKey
from tests.unit.store.conftest import StoreFactory

Body = Callable[[Store], Awaitable[None]]


def run(make_store: StoreFactory, body: Body) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def version(
    n: int, name: str = "hello", code: str = "c1", app: str | None = None, **cfg: object
) -> FunctionVersion:
    config = FunctionConfig(**cfg)  # type: ignore[arg-type]
    return FunctionVersion("default", name, n, config, code, None, float(n), app)


def record(n: int, **changes: object) -> InvocationRecord:
    base = InvocationRecord(
        id=f"inv-{n}",
        namespace="default",
        function="hello",
        version=1,
        status="succeeded",
        mode="sync",
        created_at=float(n),
        finished_at=float(n) + 0.5,
        result={"n": n},
        logs=f"log {n}\n",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def add(store: Store, fv: FunctionVersion) -> None:
    async with store.transaction() as uow:
        await uow.functions.add_version(fv)


def test_a_version_added_is_current_and_stays_stored(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.functions
        assert await repo.current("default", "hello") is None
        assert await repo.next_version("default", "hello") == 1
        first = version(1, environment={"A": "1"}, network_allow=("10.0.0.1:80",))
        await add(store, first)
        await add(store, version(2, code="c2"))
        assert await repo.current("default", "hello") == version(2, code="c2")
        assert await repo.version("default", "hello", 1) == first
        assert await repo.version("default", "hello", 3) is None
        assert [v.version for v in await repo.versions("default", "hello")] == [1, 2]
        assert await repo.next_version("default", "hello") == 3
        assert await repo.current("other", "hello") is None

    run(make_store, body)


def test_a_taken_version_number_is_a_duplicate_key(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await add(store, version(1))
        with pytest.raises(DuplicateKey):
            await add(store, version(1, code="c2"))
        assert await store.repos.functions.current("default", "hello") == version(1)

    run(make_store, body)


def test_identical_version_matches_code_layer_settings_and_app(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.functions
        await add(store, version(1))
        await add(store, version(2, memory=256))
        await add(store, version(3, app="shop"))
        assert await repo.identical_version(version(9)) == version(1)
        assert await repo.identical_version(version(9, memory=256)) == version(2, memory=256)
        assert await repo.identical_version(version(9, app="shop")) == version(3, app="shop")
        assert await repo.identical_version(version(9, memory=512)) is None
        assert await repo.identical_version(version(9, code="c9")) is None
        layered = replace(version(9), layer_hash="l1")
        assert await repo.identical_version(layered) is None

    run(make_store, body)


def test_rollback_delete_and_listing(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.functions
        await add(store, version(1, app="shop"))
        await add(store, version(2, code="c2"))
        await add(store, version(1, name="world", app="shop"))
        await repo.set_current("default", "hello", 1, now=5.0)
        assert await repo.current("default", "hello") == version(1, app="shop")
        assert await repo.names_of_app("default", "shop") == ["hello", "world"]
        listed = await repo.list_current("default")
        assert [(v.name, v.version) for v in listed] == [("hello", 1), ("world", 1)]
        await add(store, replace(version(4), namespace="other"))
        everywhere = sorted((v.namespace, v.name) for v in await repo.all_current())
        assert everywhere == [("default", "hello"), ("default", "world"), ("other", "hello")]
        await repo.delete("default", "hello")
        assert await repo.current("default", "hello") is None
        assert await repo.versions("default", "hello") == []
        assert await repo.next_version("default", "hello") == 1
        assert [v.name for v in await repo.list_current("default")] == ["world"]

    run(make_store, body)


def test_records_round_trip_and_upsert(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.invocations
        error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": ["a"]}
        failed = record(1, status="failed", error=error, result=None, cold=True, init_ms=1.5)
        await repo.record(failed)
        assert await repo.invocation("inv-1") == failed
        assert await repo.invocation("inv-0") is None
        encoded = record(2, result=[1, 2], result_json=b"[1,2]", attempt=3, mode="async")
        await repo.record(encoded)
        assert await repo.invocation("inv-2") == encoded
        await repo.record_new(record(2, status="queued"))  # there already: unchanged
        assert await repo.invocation("inv-2") == encoded
        await repo.record(record(2, status="killed"))  # replaced
        found = await repo.invocation("inv-2")
        assert found is not None and found.status == "killed"

    run(make_store, body)


def test_record_many_in_one_transaction(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        async with store.transaction() as uow:
            await uow.invocations.record_many([record(n) for n in range(1, 6)])
        async with store.transaction() as uow:
            await uow.invocations.record_many([record(6)])
        newest = await store.repos.invocations.invocations("default", "hello", limit=3)
        assert [r.id for r in newest] == ["inv-6", "inv-5", "inv-4"]
        older = await store.repos.invocations.invocations("default", "hello", 10, before=3.0)
        assert [r.id for r in older] == ["inv-2", "inv-1"]
        assert await store.repos.invocations.invocations("default", "other", 10) == []

    run(make_store, body)


def test_logs_after_walks_finished_records_in_finishing_order(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.invocations
        await repo.record(record(1, finished_at=30.0))
        await repo.record(record(2, finished_at=10.0))
        await repo.record(record(3, finished_at=None, status="running"))
        await repo.record(record(4, finished_at=20.0, function="other"))
        assert [r.id for r in await repo.logs_after("default", "hello", 0.0)] == [
            "inv-2",
            "inv-1",
        ]
        assert [r.id for r in await repo.logs_after("default", "hello", 10.0)] == ["inv-1"]
        assert [r.id for r in await repo.logs_after("default", "hello", 0.0, limit=1)] == ["inv-2"]

    run(make_store, body)


def test_pending_async_invocations_with_their_payload(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.invocations
        queued = record(1, status="queued", mode="async", finished_at=None)
        await repo.record(queued, b'{"x": 1}')
        await repo.record(record(2, status="running", mode="async", finished_at=None), b"{}")
        await repo.record(record(3, status="queued", mode="async", finished_at=None))  # no payload
        await repo.record(record(4, status="running", finished_at=None))  # sync
        await repo.record(record(5, mode="async"), b"{}")  # finished
        assert await repo.claim_resumption("inv-2", 0)
        assert not await repo.claim_resumption("inv-2", 0)  # another process came first
        await repo.record(record(2, status="running", mode="async", finished_at=None), b"{}")
        pending = await repo.pending()
        assert [(p.record.id, p.payload, p.resumed) for p in pending] == [
            ("inv-1", b'{"x": 1}', 0),
            ("inv-2", b"{}", 1),  # a later write kept the count
        ]
        assert pending[0].record == queued
        assert await repo.interrupt_running_sync(now=9.0) == 1
        interrupted = await repo.invocation("inv-4")
        assert interrupted is not None
        assert (interrupted.status, interrupted.finished_at) == ("interrupted", 9.0)

    run(make_store, body)


def test_prune_deletes_the_oldest_finished_records_only(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        repo = store.repos.invocations
        for n in range(1, 7):
            await repo.record(record(n))
        await repo.record(record(0, status="queued", mode="async", finished_at=None), b"{}")
        assert await repo.prune_records(before=4.0, limit=2) == 2
        assert await repo.invocation("inv-1") is None and await repo.invocation("inv-2") is None
        assert await repo.prune_records(before=4.0, limit=10) == 1  # inv-3
        assert await repo.prune_records(before=4.0, limit=10) == 0
        left = await repo.invocations("default", "hello", 10)
        assert sorted(r.id for r in left) == ["inv-0", "inv-4", "inv-5", "inv-6"]

    run(make_store, body)
