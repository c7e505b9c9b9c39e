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

T = TypeVar("T")
_seq = itertools.count(1)


class Harness:
    """A real Platform (manual clock, memory bus, not started) driven by the test."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.platform = Platform(Config(data_dir=data_dir, manual_clock=True, bus_url="memory://"))

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.platform.clock, ManualClock)
        return self.platform.clock

    def add(self, text: str, name: str | None = None) -> str:
        book = self.platform.rules.book
        return book.add(book.prepare("default", "admin", name=name, text=text)).name

    async def send(self, type_: str, namespace: str = "default", **attrs: Any) -> list[Enforcement]:
        event = CloudEvent(source=attrs.pop("source", "test"), type=type_, **attrs)
        stored = StoredEvent(next(_seq), event, self.clock.now(), namespace)
        return self.platform.rules.dispatch_now([stored])

    def jobs(self, rule: str) -> list[Any]:
        rows = self.platform.db.query(
            "SELECT key, kind, request FROM action_jobs WHERE rule = ? ORDER BY id", (rule,)
        )
        return list(rows)

    def close(self) -> None:
        """As the process dying would: the store closed, the data dir's lock released."""
        self.platform.db.close()
        self.platform.data_lock.release()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "data")
    yield h
    h.close()


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())
