"""Store fixtures: each parametrized test runs on SQLite and on PostgreSQL (its own schema)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ondo.backends.store import Store, open_store
from tests.services import require_postgres, unique_cluster

StoreFactory = Callable[[], Awaitable[Store]]


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, cluster) of an empty store; PostgreSQL's schema is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ondo.db'}", "ondo"
        return
    url = require_postgres()
    cluster = unique_cluster()
    yield url, cluster
    asyncio.run(drop_schema(url, cluster))


@pytest.fixture
def make_store(store_url: tuple[str, str]) -> StoreFactory:
    """Opens a store on the test's database (call it twice for two processes' views)."""
    url, cluster = store_url

    async def make() -> Store:
        store = open_store(url, cluster=cluster)
        await store.open()
        return store

    return make
