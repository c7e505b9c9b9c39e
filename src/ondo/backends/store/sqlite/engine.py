"""The embedded engine: `Database` over one SQLite connection (see database.py for its tuning).

Statements run on the event loop's thread and never suspend it (each is sub-millisecond in WAL
mode), so a transaction whose body awaits only store calls runs without interleaving. An
`asyncio.Lock` still guards the connection: a body that awaits something else (a network call)
makes other store users wait for its COMMIT instead of joining its transaction. Transactions are
`BEGIN IMMEDIATE`: SQLite has one writer, so every transaction is serializable and none is ever
retried for a conflict.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from ondo.backends.store.base import (
    ChangeCallback,
    Dialect,
    Isolation,
    Params,
    Row,
)
from ondo.backends.store.feed import LocalFeed
from ondo.backends.store.sqlite.database import SqliteDatabase
from ondo.backends.store.sqlite.migrations import MIGRATIONS
from ondo.backends.wal import WAL_LIMIT_BYTES
from ondo.errors import DuplicateKey, StoreError, StoreUnavailable


class SqliteSql:
    """`Sql` in a transaction on the engine's connection; `pending` holds its notifications."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, feed: LocalFeed) -> None:
        self._conn = conn
        self._feed = feed
        self.pending: list[tuple[str, str]] = []

    async def _ready(self) -> None:
        """Autocommit waits here for another task's open transaction (see _AutocommitSql)."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self._ready()
        with _mapped():
            return self._conn.execute(sql, params).rowcount

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self._ready()
        with _mapped():
            self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        await self._ready()
        with _mapped():
            rows: list[Row] = self._conn.execute(sql, params).fetchall()
            return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        await self._ready()
        with _mapped():
            row: Row | None = self._conn.execute(sql, params).fetchone()
            return row

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def notify(self, topic: str, key: str) -> None:
        self.pending.append((topic, key))


class _AutocommitSql(SqliteSql):
    """Each statement commits on its own (the connection is in autocommit mode between
    transactions). While a transaction is open in another task, a statement waits for its
    end rather than joining it; one issued by the task that holds the transaction is a bug."""

    def __init__(self, conn: sqlite3.Connection, feed: LocalFeed, engine: SqliteEngine) -> None:
        super().__init__(conn, feed)
        self._engine = engine

    async def _ready(self) -> None:
        lock = self._engine.lock
        if not lock.locked():
            return
        if self._engine.owner is asyncio.current_task():
            raise RuntimeError("an autocommit store call inside this task's open transaction")
        async with lock:
            pass

    async def notify(self, topic: str, key: str) -> None:
        self._feed.deliver(topic, key)


class SqliteEngine:
    """`Database` for `sqlite:///PATH`: one file, one connection, one process (datadir.lock)."""

    dialect: Dialect = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        cluster: str = "ondo",
        durability: str = "normal",
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
    ) -> None:
        self.cluster = cluster  # one SQLite file is one cluster; the name is only reported
        self.description = f"sqlite:///{path}"
        try:
            self.database = SqliteDatabase(
                path,
                durability=durability,
                background_checkpoint=True,
                wal_limit_bytes=wal_limit_bytes,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the store {self.description}: {exc}") from exc
        self._feed = LocalFeed()
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[Any] | None = None
        self._autocommit = _AutocommitSql(self.database.connection, self._feed, self)
        self.database.migrate(MIGRATIONS)  # at once: repositories still read it synchronously

    @property
    def sql(self) -> SqliteSql:
        return self._autocommit

    @asynccontextmanager
    async def transaction(
        self, isolation: Isolation = "read committed"
    ) -> AsyncIterator[SqliteSql]:
        if self.owner is not None and self.owner is asyncio.current_task():
            raise RuntimeError("a store transaction inside this task's open transaction")
        async with self.lock:
            self.owner = asyncio.current_task()
            try:  # BEGIN and COMMIT fail as StoreError too (a closed or broken database)
                with _mapped(), self.database.async_transaction() as conn:
                    tx = SqliteSql(conn, self._feed)
                    yield tx
            finally:
                self.owner = None
        for topic, key in tx.pending:  # after COMMIT, and only if it happened
            self._feed.deliver(topic, key)

    def is_conflict(self, exc: BaseException) -> bool:
        return False

    def subscribe(self, topic: str, callback: ChangeCallback) -> Callable[[], None]:
        return self._feed.subscribe(topic, callback)

    async def open(self) -> None:
        """Nothing left to do: the constructor opened and migrated the file."""

    async def close(self) -> None:
        self.database.close()


@contextmanager
def _mapped() -> Iterator[None]:
    """Driver errors become StoreError at the boundary, constraint violations DuplicateKey."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise DuplicateKey(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"the store failed: {exc}") from exc
