"""`Store`: a database engine with every domain's repositories, and atomic units of work."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from ondo.backends.store.base import (
    ChangeCallback,
    Database,
    Isolation,
    Repositories,
    RepositoryFactory,
)
from ondo.backends.store.sql.unit import SqlRepositories
from ondo.errors import StoreConflict

log = logging.getLogger("ondo.store")

T = TypeVar("T")
ATOMIC_ATTEMPTS = 10
RETRY_BASE_S = 0.002


class Store:
    """What the platform hands the domain: repositories, transactions and the change feed."""

    def __init__(self, database: Database, repositories: RepositoryFactory = SqlRepositories):
        self.database = database
        self.dialect = database.dialect
        self.cluster = database.cluster
        # Several processes (each with its own data dir) may share it: what one stores only in
        # its data dir (code bundles, layers) must then be in the store too (repos.blobs).
        # The embedded SQLite store belongs to the one process that owns its data dir.
        self.shared = database.dialect != "sqlite"
        self._factory = repositories
        self.repos: Repositories = repositories(database.sql)  # each call commits on its own

    @asynccontextmanager
    async def transaction(
        self, isolation: Isolation = "read committed"
    ) -> AsyncIterator[Repositories]:
        """One transaction, not retried: for work that cannot conflict (or may fail if it does)."""
        async with self.database.transaction(isolation) as sql:
            yield self._factory(sql)

    async def atomic(
        self,
        body: Callable[[Repositories], Awaitable[T]],
        *,
        isolation: Isolation = "serializable",
        attempts: int = ATOMIC_ATTEMPTS,
    ) -> T:
        """`body(uow)` in one transaction, run again from the start when it lost to a
        concurrent transaction (so `body` must have no effect outside the store)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction(isolation) as uow:
                    return await body(uow)
            except StoreConflict:
                if attempt == attempts:
                    raise
                # Jittered backoff: the transactions that collided do not collide again in step.
                await asyncio.sleep(random.uniform(0, RETRY_BASE_S * 2**attempt))
        raise AssertionError("unreachable")

    def subscribe(self, topic: str, callback: ChangeCallback) -> Callable[[], None]:
        """`callback(key)` whenever `topic` changes in any process; returns the detacher."""
        return self.database.subscribe(topic, callback)

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()
