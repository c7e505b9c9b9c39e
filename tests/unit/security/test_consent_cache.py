"""The consent cache of one process follows the grants and users another process changes (two
Store objects on PostgreSQL: two LISTEN connections; on SQLite one store is one process's, so
both share it), through the change feed; a namespace's view is read once, then served from
memory until a change empties it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ondo.backends.store import Store
from ondo.backends.store.repositories.grants import Grant
from ondo.backends.store.repositories.tokens import User
from ondo.security.consent import Consents
from tests.unit.store.conftest import StoreFactory, make_store, store_url  # noqa: F401

WAIT_S = 10.0  # how long a change may take to reach the other process before the test fails
NOW = 100.0


async def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "the change did not reach the other process"
        await asyncio.sleep(0.01)


def test_a_grant_or_a_role_given_in_one_process_reaches_the_others_cache(
    make_store: StoreFactory,  # noqa: F811
) -> None:
    async def main() -> None:
        first = await make_store()
        second = first if first.database.dialect == "sqlite" else await make_store()
        consents = Consents(second, lambda: NOW)
        consents.watch(second.subscribe)
        try:
            await _follow(first, second, consents)
        finally:
            consents.close()
            await first.close()
            if second is not first:
                await second.close()

    asyncio.run(main())


async def _follow(first: Store, second: Store, consents: Consents) -> None:
    repos = first.repos
    for name, role in (("alice", "citizen"), ("bob", "developer")):
        await repos.tokens.put_user(User("clinic", name, role, "user", 0.0, "admin"))  # type: ignore[arg-type]

    async def decided() -> bool:
        view = await consents.view("clinic", second.repos)
        return view.decide("bob", "alice", "health.bp", NOW).allowed

    assert not await decided()
    cached = await consents.view("clinic")
    assert await consents.view("clinic") is cached  # served from memory
    grant = Grant("g1", "clinic", "alice", "bob", ("health.*",), None, "", 1.0)
    await repos.grants.add(grant)
    await until(lambda: consents.cached("clinic") is None)
    assert await decided()
    await repos.grants.revoke("clinic", "g1", 2.0)
    await until(lambda: consents.cached("clinic") is None)
    assert not await decided()
    await repos.tokens.put_user(User("clinic", "bob", "admin", "user", 0.0, "admin"))
    await until(lambda: consents.cached("clinic") is None)
    assert await decided()  # a namespace's admin needs no grant
