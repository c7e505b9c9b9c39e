"""CurrentVersions: the current version of every function, kept by the change feed; a read that
returns late never replaces a newer answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.functions import (
    TOPIC,
    FunctionConfig,
    FunctionRepository,
    FunctionVersion,
    change_key,
)
from ondo.functions.directory import CurrentVersions


def version(n: int, namespace: str = "default") -> FunctionVersion:
    return FunctionVersion(namespace, "hello", n, FunctionConfig(), f"c{n}", None, float(n))


class HeldReads:
    """The store's repository, whose `current` answers are held until the test releases them
    (as PostgreSQL's, on several connections, may return in any order)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: list[asyncio.Event] = []

    def repository(self) -> FunctionRepository:
        return self  # type: ignore[return-value]  # only what CurrentVersions calls

    async def current(self, namespace: str, name: str) -> FunctionVersion | None:
        found = await self.store.repos.functions.current(namespace, name)
        release = asyncio.Event()
        self.held.append(release)
        await release.wait()
        return found

    async def all_current(self) -> list[FunctionVersion]:
        return await self.store.repos.functions.all_current()


async def deploy(store: Store, fv: FunctionVersion) -> None:
    async with store.transaction() as uow:
        await uow.functions.add_version(fv)
        await uow.notify(TOPIC, change_key(fv.namespace, fv.name))


async def reads_held(reads: HeldReads, count: int) -> None:
    while len(reads.held) < count:
        await asyncio.sleep(0)


def test_a_late_read_never_replaces_a_newer_answer(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            await deploy(store, version(1, namespace="other"))
            reads = HeldReads(store)
            current = CurrentVersions(reads.repository, store.subscribe)
            await current.load()
            assert current.get("other", "hello") == version(1, namespace="other")
            assert current.get("default", "hello") is None

            await deploy(store, version(1))  # heard: a read of version 1 starts
            await reads_held(reads, 1)
            await deploy(store, version(2))  # heard: a read of version 2 starts
            await reads_held(reads, 2)
            reads.held[1].set()  # the second read returns first
            await asyncio.sleep(0)
            while current.get("default", "hello") is None:
                await asyncio.sleep(0)
            assert current.get("default", "hello") == version(2)
            reads.held[0].set()  # then the first, older one
            await current.settled()
            assert current.get("default", "hello") == version(2)
            current.close()
        finally:
            await store.close()

    asyncio.run(main())


def test_own_changes_apply_at_once_and_everything_reloads(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            current = CurrentVersions(lambda: store.repos.functions, store.subscribe)
            await current.load()
            current.put(version(3))  # this process's own deploy, after its commit
            assert current.get("default", "hello") == version(3)
            current.forget("default", "hello")
            assert current.get("default", "hello") is None
            async with store.transaction() as uow:  # rows changed with no key: "*"
                await uow.functions.add_version(version(4))
                await uow.notify(TOPIC, "*")
            await current.settled()
            assert [fv.version for fv in current.in_namespace("default")] == [4]
            current.close()
        finally:
            await store.close()

    asyncio.run(main())
