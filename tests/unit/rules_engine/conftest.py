from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ondo.backends.bus.base import StoredEvent
from ondo.backends.store.repositories.rules import Enforcement
from ondo.clock import ManualClock
from ondo.config import Config
from ondo.events import CloudEvent
from ondo.platform import Platform
from tests.unit.store.conftest import make_store, store_url  # noqa: F401 (fixtures)

T = TypeVar("T")
_seq = itertools.count(1)


class Harness:
    """A real Platform (manual clock, memory bus, services not started; the rules engine
    loaded) driven by the test on one event loop of its own (`run`)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runner = asyncio.Runner()
        self.platform = Platform(Config(data_dir=data_dir, manual_clock=True, bus_url="memory://"))
        self.run(self._start)

    async def _start(self) -> None:
        await self.platform.store.open()
        await self.platform.rules.start()

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        return self.runner.run(_call(fn))

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.platform.clock, ManualClock)
        return self.platform.clock

    async def define(self, text: str, name: str | None = None) -> str:
        book = self.platform.rules.book
        return (await book.add(book.prepare("default", "admin", name=name, text=text))).name

    def add(self, text: str, name: str | None = None) -> str:
        return self.run(lambda: self.define(text, name))

    async def send(self, type_: str, namespace: str = "default", **attrs: Any) -> list[Enforcement]:
        event = CloudEvent(source=attrs.pop("source", "test"), type=type_, **attrs)
        stored = StoredEvent(next(_seq), event, self.clock.now(), namespace)
        return await self.platform.rules.dispatch_now([stored])

    def jobs(self, rule: str) -> list[Any]:
        sql = self.platform.store.database.sql
        query = "SELECT key, kind, request FROM action_jobs WHERE rule = ? ORDER BY id"
        return self.run(lambda: sql.fetch(query, (rule,)))

    def close(self) -> None:
        """As the process dying would: the store closed, the data dir's lock released."""
        try:
            self.run(self.platform.rules.stop)
            self.run(self.platform.store.close)
        finally:
            self.runner.close()
            self.platform.data_lock.release()


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "data")
    yield h
    h.close()
