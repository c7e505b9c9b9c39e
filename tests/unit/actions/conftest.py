from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.destinations import BusAppend
from ondo.actions.model import Action
from ondo.actions.queue import ActionQueue
from ondo.backends.store.repositories.actions import Job, JobRepository
from ondo.config import Config, QueueSettings
from ondo.platform import Platform


@dataclass
class ScriptedKind:
    """A test action kind: fails the first `failures[key]` attempts of each key, then succeeds."""

    kind: str = "scripted"
    destinations: bool = False
    failures: dict[str, int] = field(default_factory=dict)
    retryable: bool = True
    calls: list[tuple[str, int]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    limits: dict[str, int] = field(default_factory=dict)  # target -> how many may run at once
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # target -> wait for it

    def validate(self, action: Action, namespace: str) -> None:
        return None

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        self.calls.append((request.key, attempt))
        if self.gate is not None:
            await self.gate.wait()
        if request.action.target in self.gates:
            await self.gates[request.action.target].wait()
        done = sum(1 for key, _ in self.calls if key == request.key)
        if done <= self.failures.get(request.key, 0):
            return ActionResult(
                ok=False, detail={"error": f"failure {done}"}, retryable=self.retryable
            )
        return ActionResult(ok=True, detail={"call": done})

    def lane(self, request: ActionRequest) -> str:
        return f"scripted:{request.action.target}"

    def lane_limit(self, request: ActionRequest) -> int | None:
        return self.limits.get(request.action.target)

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.calls if k == key)


def request(
    key: str,
    kind: str = "scripted",
    args: Mapping[str, Any] | None = None,
    target: str = "t",
) -> ActionRequest:
    return ActionRequest(
        key=key,
        namespace="default",
        rule="r1",
        action_index=0,
        action=Action(kind=kind, target=target, args=dict(args or {}), cc=()),
        event={"specversion": "1.0", "id": f"ev-{key}", "source": "test/src", "type": "t.happened"},
        enforcement_id=f"enf-{key}",
    )


async def enqueue(queue: ActionQueue, requests: Sequence[ActionRequest]) -> None:
    """Jobs as the rules engine makes them: in a unit of work of the store (its decision's)."""
    async with queue.store.transaction() as uow:
        await queue.enqueue_in(uow, requests)


async def job_of(jobs: JobRepository, key: str) -> Job | None:
    """The job with this key (every job a test makes has the enforcement id `enf-<key>`)."""
    return next((j for j in await jobs.by_enforcement(f"enf-{key}") if j.key == key), None)


def queue_of(platform: Platform, settings: QueueSettings) -> ActionQueue:
    """A queue of its own over the platform's store and kinds (what platform.py wires)."""
    append = BusAppend(platform.bus, platform.metrics)
    return ActionQueue(
        platform.store,
        platform.actions.kinds,
        platform.clock,
        platform.metrics.registry,
        append,
        settings,
    )


@pytest.fixture
def scripted(platform: Platform) -> ScriptedKind:
    kind = ScriptedKind()
    platform.actions.kinds.add(kind)
    return kind


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """A platform that is built but not started: the tests start only its action queue."""
    built = Platform(Config(data_dir=tmp_path / "data", manual_clock=True))
    yield built
    asyncio.run(built.bus.close())
    asyncio.run(built.store.close())


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait for something the queue does in the background (bounded; not a timing assertion).
    The predicate may be a coroutine function (one that reads the store)."""
    deadline = time.monotonic() + timeout
    while not await _holds(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def _holds(predicate: Callable[[], bool | Awaitable[bool]]) -> bool:
    found = predicate()
    return bool(await found) if inspect.isawaitable(found) else bool(found)
