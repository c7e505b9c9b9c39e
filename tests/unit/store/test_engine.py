"""The store engine contract, on SQLite and PostgreSQL: statements, transactions, conflicts
retried by `atomic`, and change notifications delivered at commit and never on rollback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from ondo.backends.store import Store, open_store
from ondo.backends.store.base import Sql
from ondo.errors import ConfigError, DuplicateKey, StoreError, StoreUnavailable
from tests.unit.store.conftest import StoreFactory

TABLE = "CREATE TABLE counters (name TEXT PRIMARY KEY, n BIGINT NOT NULL)"


def run(make_store: StoreFactory, body: object) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            await store.database.sql.execute(TABLE)
            await body(store)  # type: ignore[operator]
        finally:
            await store.close()

    asyncio.run(main())


def test_statements_take_question_mark_placeholders_and_report_changed_rows(
    make_store: StoreFactory,
) -> None:
    async def body(store: Store) -> None:
        sql = store.database.sql
        await sql.execute_many("INSERT INTO counters VALUES (?, ?)", [("a", 1), ("b", 2)])
        assert await sql.execute("UPDATE counters SET n = n + ? WHERE n >= ?", (10, 1)) == 2
        rows = await sql.fetch("SELECT name, n FROM counters ORDER BY name")
        assert [(r["name"], r[1]) for r in rows] == [("a", 11), ("b", 12)]
        one = await sql.fetch_one("SELECT n FROM counters WHERE name = ?", ("b",))
        assert one is not None and one["n"] == 12
        assert await sql.fetch_one("SELECT n FROM counters WHERE name = ?", ("z",)) is None
        assert await sql.fetch_value("SELECT count(*) FROM counters") == 2
        assert await sql.fetch_value("SELECT n FROM counters WHERE name = ?", ("z",)) is None

    run(make_store, body)


def test_a_transaction_that_raises_keeps_nothing_and_tells_no_one(make_store: StoreFactory) -> None:
    heard: list[str] = []

    async def body(store: Store) -> None:
        store.subscribe("counters", heard.append)
        with pytest.raises(RuntimeError, match="boom"):
            async with store.database.transaction() as sql:
                await sql.execute("INSERT INTO counters VALUES (?, ?)", ("a", 1))
                await sql.notify("counters", "a")
                raise RuntimeError("boom")
        assert await store.database.sql.fetch_value("SELECT count(*) FROM counters") == 0
        async with store.database.transaction() as sql:
            await sql.execute("INSERT INTO counters VALUES (?, ?)", ("b", 1))
            await sql.notify("counters", "b")
            assert heard == []  # not before COMMIT
        assert heard[:1] == ["b"]

    run(make_store, body)


def test_a_duplicate_key_is_reported_as_such(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        await store.database.sql.execute("INSERT INTO counters VALUES (?, ?)", ("a", 1))
        with pytest.raises(DuplicateKey):
            await store.database.sql.execute("INSERT INTO counters VALUES (?, ?)", ("a", 2))

    run(make_store, body)


class Counters:
    """A repository of the test's own, to drive `Store.atomic` as the domain does."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    async def notify(self, topic: str, key: str) -> None:
        await self.sql.notify(topic, key)

    async def increment_slowly(self, name: str) -> None:
        n = await self.sql.fetch_value("SELECT n FROM counters WHERE name = ?", (name,))
        await asyncio.sleep(0)  # let the other transactions read the same value
        await self.sql.execute("UPDATE counters SET n = ? WHERE name = ?", (n + 1, name))


def test_atomic_read_modify_write_never_loses_an_update(make_store: StoreFactory) -> None:
    """Two views of one database (two processes' pools on PostgreSQL) increment one counter by
    reading it, then writing it back: serializable transactions retried by `atomic` count all."""

    async def body(store: Store) -> None:
        # One SQLite file belongs to one process (the data-dir lock): one view, shared.
        other = await make_store() if store.dialect == "postgres" else store
        views = [Store(s.database, Counters) for s in (store, other, store, other)]
        try:
            await store.database.sql.execute("INSERT INTO counters VALUES ('c', 0)")

            async def worker(view: Store) -> None:
                for _ in range(10):
                    await view.atomic(
                        lambda uow: cast(Counters, uow).increment_slowly("c"), attempts=100
                    )

            await asyncio.gather(*(worker(v) for v in views))
            assert await store.database.sql.fetch_value("SELECT n FROM counters") == 40
        finally:
            if other is not store:
                await other.close()

    run(make_store, body)


def test_a_transaction_inside_an_open_one_is_refused(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        if store.dialect != "sqlite":
            return  # PostgreSQL gives the inner block a connection of its own
        async with store.database.transaction():
            with pytest.raises(RuntimeError, match="inside this task's open transaction"):
                async with store.database.transaction():
                    pass
            with pytest.raises(RuntimeError, match="inside this task's open transaction"):
                await store.database.sql.execute("SELECT 1")

    run(make_store, body)


def test_autocommit_waits_for_another_tasks_open_transaction(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with store.database.transaction() as sql:
                await sql.execute("INSERT INTO counters VALUES ('h', 1)")
                started.set()
                await release.wait()
                await sql.execute("UPDATE counters SET n = 2 WHERE name = 'h'")

        task = asyncio.create_task(holder())
        await started.wait()
        reader = asyncio.create_task(
            store.database.sql.fetch_value("SELECT n FROM counters WHERE name = 'h'")
        )
        await asyncio.sleep(0.01)
        release.set()
        await task
        # SQLite waits for the commit and sees it; PostgreSQL reads the last committed state.
        assert await reader in (None, 2)
        if store.dialect == "sqlite":
            assert reader.result() == 2

    run(make_store, body)


def test_two_views_of_one_postgresql_hear_each_others_changes_and_their_own_once(
    make_store: StoreFactory, store_url: tuple[str, str]
) -> None:
    if store_url[0].startswith("sqlite"):
        pytest.skip("one SQLite store belongs to one process (the data-dir lock)")

    async def body(store: Store) -> None:
        other = await make_store()
        heard: asyncio.Queue[str] = asyncio.Queue()
        store.subscribe("functions", heard.put_nowait)
        try:
            async with store.transaction() as uow:
                await uow.notify("functions", "default/mine")
            # PostgreSQL sends notifications in commit order: by the time the other store's
            # change arrives, the echo of ours has arrived too, and must not be heard again.
            async with other.transaction() as uow:
                await uow.notify("functions", "default/theirs")
            got = [await asyncio.wait_for(heard.get(), 10) for _ in range(2)]
            assert got == ["default/mine", "default/theirs"]
            async with other.transaction() as uow:
                await uow.notify("functions", "default/barrier")
            assert await asyncio.wait_for(heard.get(), 10) == "default/barrier"
        finally:
            await other.close()

    run(make_store, body)


def test_opening_twice_applies_each_migration_once(make_store: StoreFactory) -> None:
    async def body(store: Store) -> None:
        again = await make_store()
        await again.close()
        names = await store.database.sql.fetch("SELECT name FROM schema_migrations")
        assert len({r[0] for r in names}) == len(names)

    run(make_store, body)


def test_store_urls_that_cannot_work_say_what_to_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown store URL 'mysql://x'"):
        open_store("mysql://x")
    with pytest.raises(ConfigError, match="has no scheme"):
        open_store(str(tmp_path))
    with pytest.raises(ConfigError, match="names no file"):
        open_store("sqlite://")


def test_an_unreachable_postgresql_is_named_with_the_fix() -> None:
    store = open_store("postgresql://postgres:secret@127.0.0.1:1/test", cluster="t_unreachable")
    with pytest.raises(StoreUnavailable, match=r"postgres:\*\*\*@127.0.0.1:1/test.*Is PostgreSQL"):
        asyncio.run(store.open())


def test_a_closed_store_fails_with_the_stores_error(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        await store.close()
        with pytest.raises(StoreError):
            async with store.transaction():
                pass
        with pytest.raises(StoreError):
            await store.database.sql.fetch_value("SELECT 1")

    asyncio.run(main())
