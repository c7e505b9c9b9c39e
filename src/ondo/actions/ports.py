"""What the action kinds use of other parts, as narrow interfaces (platform.py hands them the
real ones): the function service's invoke side, and appending an event to the bus."""

from __future__ import annotations

from typing import Protocol

from ondo.backends.bus.base import AppendResult
from ondo.backends.store.repositories.functions import FunctionVersion, InvocationRecord
from ondo.events import CloudEvent


class Functions(Protocol):
    """The function service, as the invoke actions see it."""

    def exists(self, name: str, namespace: str = "default") -> bool: ...

    def get(self, name: str, namespace: str = "default") -> FunctionVersion:
        """The current version; NotFound when the function does not exist."""
        ...

    async def get_version(
        self, name: str, namespace: str = "default", version: int | None = None
    ) -> FunctionVersion: ...

    async def invocation(self, invocation_id: str) -> InvocationRecord | None: ...

    async def record_final(self, record: InvocationRecord) -> None:
        """Store an invocation's final record (one the queue gave up on)."""
        ...

    async def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        namespace: str = "default",
        version: int | None = None,
        trigger: str | None = None,
        request_id: str | None = None,
        wait_for_slot: bool = False,
        tracked: bool = False,
        record_after_answer: bool = False,
        attempt: int | None = None,
    ) -> InvocationRecord:
        """Run one invocation now and return its final record."""
        ...


class AppendEvent(Protocol):
    """Append one event an action makes to the bus (counted in the platform's metrics)."""

    async def __call__(self, event: CloudEvent, namespace: str) -> AppendResult: ...
