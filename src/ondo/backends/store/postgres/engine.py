"""The PostgreSQL engine: `Database` over an asyncpg pool, one schema per cluster.

- Every connection's `search_path` is the cluster's schema, so the SQL names bare tables and
  several clusters (and parallel test runs) share one database.
- SQL arrives with `?` placeholders (the form SQLite takes) and is numbered `$1, $2, …` once per
  distinct statement.
- Migrations run under an advisory lock, so two processes starting together apply each once.
- The change feed is LISTEN/NOTIFY on the channel `<cluster>_changes`: `notify` inside a
  transaction is sent by PostgreSQL at COMMIT (never on rollback). This process's subscribers
  hear it at once after the commit; its echo, marked with this engine's origin, is ignored (a
  second delivery cost a second reload, or a second zygote restart for a secret's change).
  If the listening connection drops,
  notifications may have been missed: it reconnects and tells every subscriber to drop
  everything.
- A transaction that loses to a concurrent one (serialization failure, deadlock) raises
  StoreConflict; `Store.atomic` retries those.

Why asyncpg and not psycopg 3 (+ psycopg_pool): measured with bench/store_drivers.py on the rule
decision (one SERIALIZABLE transaction: count-window insert ON CONFLICT DO NOTHING, window
count, enforcement record, 1-3 action jobs), both drivers on uvloop with prepared statements
and a pool of 8, alternating in 5 rounds of 3 s in one run (PostgreSQL 15 on this machine,
asyncpg 0.32, psycopg 3.3.9 binary; transactions/s, median and range over the rounds):

                               asyncpg              psycopg              asyncpg/psycopg
  concurrency 1                127 (103-208)        121 (66-168)         1.05
  concurrency 8                825 (678-932)        570 (527-620)        1.45
  p50 / p99 ms, concurrency 8  8.7 / 24.2           12.6 / 35.9
  synchronous_commit=off, c 1  940 (389-966)        221 (141-377)        4.25
  synchronous_commit=off, c 8  992 (727-1790)       718 (592-902)        1.38

At concurrency 1 both wait on the commit's WAL flush (~7 ms on this disk), so they tie; once the
flush is shared by several transactions (concurrency 8, as the dispatcher and the action queue
run) or taken out (synchronous_commit=off), what is left is the driver's own cost per round trip,
and asyncpg's is lower: 1.4x the decisions per second at concurrency 8 and a third lower p99.
The rest points the same way: asyncpg was already the dependency, is typed (asyncpg-stubs), and
delivers LISTEN/NOTIFY as a callback on a plain connection. What psycopg would have brought
(pipeline mode, a synchronous API, libpq's full option set) the store does not need. Rerun the
bench after upgrading either driver; the figures above were taken on a shared 2-core machine,
so read the ratios, not the absolute numbers.

The pool is made without asyncpg's reset query on release (`reset=_keep_session`): the store
keeps no session state on pooled connections, and the default reset costs a round trip per
release, i.e. per autocommit call and per transaction. Measured by bench/store_drivers.py
(`asyncpg_no_reset`, 4 alternating rounds): 1.53x the decisions/s at concurrency 1 and 1.10x at 8.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache, partial
from typing import Any, Literal, TypeAlias

import asyncpg

from ondo.backends.store.base import ChangeCallback, Dialect, Isolation, Params, Row
from ondo.backends.store.feed import LocalFeed
from ondo.backends.store.postgres.migrations import MIGRATIONS
from ondo.errors import DuplicateKey, StoreConflict, StoreError, StoreUnavailable

log = logging.getLogger("ondo.store")
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)

RECONNECT_DELAY_S = 1.0
LISTEN_TIMEOUT_S = 30.0
POOL_CLOSE_TIMEOUT_S = 3.0
_ISOLATION: dict[str, Literal["read_committed", "repeatable_read", "serializable"]] = {
    "read committed": "read_committed",
    "repeatable read": "repeatable_read",
    "serializable": "serializable",
}
_SEPARATOR = "\t"  # between origin, topic and key in a notification's payload
_ORIGIN_MARK = "@"  # a payload starting with it names the engine that sent it (topics never do)


@lru_cache(maxsize=4096)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, …` (our SQL holds no `?` in literals)."""
    count = 0

    def number(_match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", number, sql)


class PostgresSql:
    """`Sql` on one pooled connection (a transaction's), or autocommit over the pool."""

    dialect: Dialect = "postgres"

    def __init__(self, engine: PostgresEngine, conn: Connection | None) -> None:
        self._engine = engine
        self._conn = conn
        self.pending: list[tuple[str, str]] = []

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._conn is not None:
            with _mapped():
                yield self._conn
            return
        with _mapped():
            async with self._engine.pool.acquire() as conn:
                yield conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._connection() as conn:
            status: str = await conn.execute(numbered(sql), *params)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        async with self._connection() as conn:
            await conn.executemany(numbered(sql), [tuple(r) for r in rows])

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._connection() as conn:
            return list(await conn.fetch(numbered(sql), *params))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._connection() as conn:
            row: Row | None = await conn.fetchrow(numbered(sql), *params)
            return row

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        async with self._connection() as conn:
            return await conn.fetchval(numbered(sql), *params)

    async def notify(self, topic: str, key: str) -> None:
        if self._conn is not None and (topic, key) in self.pending:
            return  # PostgreSQL sends one of identical notifications of a transaction anyway
        async with self._connection() as conn:
            await conn.execute(
                "SELECT pg_notify($1, $2)",
                self._engine.channel,
                _SEPARATOR.join((self._engine.origin, topic, key)),
            )
        if self._conn is None:
            self._engine.feed.deliver(topic, key)
        else:
            self.pending.append((topic, key))


class PostgresEngine:
    """`Database` for `postgresql://USER@HOST:PORT/DB` (psql's URL form, any libpq option)."""

    dialect: Dialect = "postgres"

    def __init__(self, url: str, *, cluster: str = "ondo", pool_size: int = 10) -> None:
        self.url = url
        self.cluster = cluster
        self.schema = cluster
        self.channel = f"{cluster}_changes"
        self.description = _without_password(url)
        self.feed = LocalFeed()
        # Marks this engine's notifications, so that their echo is not delivered twice.
        self.origin = _ORIGIN_MARK + secrets.token_hex(8)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listening: asyncio.Task[None] | None = None
        self._autocommit = PostgresSql(self, None)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"the store {self.description} is not open (or already closed)")
        return self._pool

    @property
    def sql(self) -> PostgresSql:
        return self._autocommit

    async def open(self) -> None:
        if self._pool is not None:
            return
        await self._create_schema()
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                server_settings={"search_path": self.schema},
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise self._unavailable(exc) from exc
        await self._migrate()
        listening = asyncio.Event()
        self._listening = asyncio.create_task(self._listen(listening), name="ondo-store-listen")
        try:
            async with asyncio.timeout(LISTEN_TIMEOUT_S):
                await listening.wait()  # changes made from now on reach this process
        except TimeoutError:
            await self.close()
            raise StoreUnavailable(
                f"the store {self.description} accepted connections but not LISTEN "
                f"within {LISTEN_TIMEOUT_S:g} s"
            ) from None

    async def _create_schema(self) -> None:
        try:
            conn = await asyncpg.connect(self.url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise self._unavailable(exc) from exc
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.schema)
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        finally:
            await conn.close()

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.schema)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, script in MIGRATIONS:
                if name not in done:
                    await conn.execute(script)  # a script may hold several statements
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, extract(epoch from now()))",
                        name,
                    )

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot reach the store {self.description}: {exc}. Is PostgreSQL running and does "
            "the URL name a database this user may use (postgresql://USER@HOST:PORT/DATABASE)?"
        )

    @asynccontextmanager
    async def transaction(
        self, isolation: Isolation = "read committed"
    ) -> AsyncIterator[PostgresSql]:
        with _mapped():
            async with (
                self.pool.acquire() as conn,
                conn.transaction(isolation=_ISOLATION[isolation]),
            ):
                tx = PostgresSql(self, conn)
                yield tx
        for topic, key in tx.pending:  # committed: this process's caches hear it at once
            self.feed.deliver(topic, key)

    def is_conflict(self, exc: BaseException) -> bool:
        return isinstance(exc, StoreConflict)

    def subscribe(self, topic: str, callback: ChangeCallback) -> Callable[[], None]:
        return self.feed.subscribe(topic, callback)

    async def _listen(self, listening: asyncio.Event) -> None:
        """Hold a LISTEN connection open; after each reconnect, caches drop everything."""
        first = True
        while True:
            try:
                self._listener = await asyncpg.connect(self.url)
                await self._listener.add_listener(self.channel, self._heard)
                listening.set()
                if not first:
                    log.warning("the store's change feed reconnected; dropping cached state")
                    self.feed.deliver_everything()
                first = False
                closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._listener.add_termination_listener(partial(_resolve, closed))
                await closed
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("the store's change feed is down (%s); retrying", exc)
            await asyncio.sleep(RECONNECT_DELAY_S)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        text = str(payload)
        if text.startswith(_ORIGIN_MARK):
            origin, _, text = text.partition(_SEPARATOR)
            if origin == self.origin:
                return  # our own, delivered at commit
        topic, _, key = text.partition(_SEPARATOR)
        self.feed.deliver(topic, key)

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
            self._listening = None
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(POOL_CLOSE_TIMEOUT_S):
                    await pool.close()  # waits for every connection to be released
            except TimeoutError:
                held = pool.get_size() - pool.get_idle_size()
                log.error(
                    "%d store connection(s) still held %g s into closing; terminating them",
                    held,
                    POOL_CLOSE_TIMEOUT_S,
                )
                pool.terminate()


@contextmanager
def _mapped() -> Iterator[None]:
    """Driver errors become the store's errors at the boundary."""
    try:
        yield
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError) as exc:
        raise StoreConflict(f"the transaction lost to a concurrent one: {exc}") from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise DuplicateKey(str(exc)) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"the store failed: {exc}") from exc
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
        raise StoreError(f"the store's connection failed: {exc}") from exc


async def _keep_session(_conn: object) -> None:
    """Nothing to reset when a connection goes back to the pool: the store keeps no session
    state on pooled connections (search_path is set at connect, LISTEN has a connection of its
    own, advisory locks are transaction-scoped), and asyncpg still rolls back a transaction left
    open. asyncpg's default reset would cost a round trip on every release."""


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _resolve(future: asyncio.Future[None], _conn: object) -> None:
    if not future.done():
        future.set_result(None)
