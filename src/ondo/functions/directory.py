"""The current version of every function, held in memory and kept fresh by the change feed.

Every invocation asks for its function's current version, so that answer must cost no store
round trip; and several processes may share one store, so what this process remembers must
follow what any of them changes. Each change of a function's current version (deploy,
rollback, delete) notifies TOPIC with the key "namespace/name" in its transaction; every
process's directory then reads that function again (key "*": everything), and until that read
returns it answers with what it had.

When such a read finds that another process replaced or deleted a version this process knew as
current, `on_replaced(old)` is called (the service retires the old version's zygote, as the
process that made the change did in its own runtime); when it finds a version this process did
not know as current (the first load included), `on_heard(new)` is called (the service fetches
its code from a shared store ahead of its first invocation).

Reads may finish out of order (PostgreSQL runs them on several connections), so each entry
remembers the sequence number of the read or write that produced it, and an answer never
replaces a newer one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from ondo.backends.store.base import EVERYTHING
from ondo.backends.store.repositories.functions import (
    TOPIC,
    FunctionRepository,
    FunctionVersion,
)

log = logging.getLogger("ondo.functions")

Key = tuple[str, str]  # (namespace, name)
Listener = Callable[[str], None]


class CurrentVersions:
    """`get(namespace, name)` from memory; `load()` once, then the change feed keeps it."""

    def __init__(
        self,
        repository: Callable[[], FunctionRepository],
        subscribe: Callable[[str, Listener], Callable[[], None]],
        on_replaced: Callable[[FunctionVersion], None] | None = None,
        on_heard: Callable[[FunctionVersion], None] | None = None,
    ) -> None:
        self._repository = repository  # autocommit: each read on its own
        self._subscribe = subscribe
        self._on_replaced = on_replaced
        self._on_heard = on_heard
        self._current: dict[Key, FunctionVersion] = {}
        self._seq_of: dict[Key, int] = {}  # the sequence number behind each entry (or absence)
        self._seq = itertools.count(1)
        self._refreshing: set[asyncio.Task[None]] = set()
        self._detach: Callable[[], None] | None = None

    def get(self, namespace: str, name: str) -> FunctionVersion | None:
        return self._current.get((namespace, name))

    def in_namespace(self, namespace: str) -> list[FunctionVersion]:
        return sorted(
            (fv for (ns, _), fv in self._current.items() if ns == namespace),
            key=lambda fv: fv.name,
        )

    async def load(self) -> None:
        """Read every function's current version, then follow the change feed."""
        if self._detach is None:
            self._detach = self._subscribe(TOPIC, self._changed)
        await self._load_all()

    def close(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        for task in self._refreshing:
            task.cancel()

    async def settled(self) -> None:
        """Wait for the reads the change feed started (tests, and orderly shutdown)."""
        while self._refreshing:
            await asyncio.wait(set(self._refreshing))

    # --- this process's own changes (after their transaction committed) -------------------

    def put(self, fv: FunctionVersion) -> None:
        self._apply((fv.namespace, fv.name), fv, next(self._seq))

    def forget(self, namespace: str, name: str) -> None:
        self._apply((namespace, name), None, next(self._seq))

    # --- the change feed ---------------------------------------------------------------

    def _changed(self, key: str) -> None:
        if key == EVERYTHING:
            self._spawn(self._load_all())
            return
        namespace, sep, name = key.partition("/")
        if sep:
            self._spawn(self._refresh((namespace, name)))

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not re-read changed functions", exc_info=task.exception())

    async def _refresh(self, key: Key) -> None:
        seq = next(self._seq)
        found = await self._repository().current(*key)
        self._apply(key, found, seq, heard=True)

    async def _load_all(self) -> None:
        seq = next(self._seq)
        found = await self._repository().all_current()
        fresh = {(fv.namespace, fv.name): fv for fv in found}
        for key in set(self._current) | set(fresh):
            self._apply(key, fresh.get(key), seq, heard=True)

    def _apply(self, key: Key, fv: FunctionVersion | None, seq: int, heard: bool = False) -> None:
        if seq < self._seq_of.get(key, 0):
            return  # a newer answer is there already
        self._seq_of[key] = seq
        old = self._current.pop(key, None) if fv is None else self._current.get(key)
        if fv is not None:
            self._current[key] = fv
        if heard and old is not None and old != fv and self._on_replaced is not None:
            self._on_replaced(old)
        if heard and fv is not None and old != fv and self._on_heard is not None:
            self._on_heard(fv)
