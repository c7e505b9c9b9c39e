"""Functions, their immutable versions and invocation records: the repositories' contract and
the records they return (functions/ re-exports the records from functions/model.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

MAX_EVENT_AGE_S = 21600.0  # Lambda's MaximumEventAgeInSeconds upper bound (6 h), the default
TOPIC = "functions"  # change feed: key "namespace/name" when a function's current version changes

InvocationStatus = Literal[
    "queued", "running", "succeeded", "failed", "timed_out", "killed", "interrupted"
]
FINAL_STATUSES = frozenset({"succeeded", "failed", "timed_out", "killed", "interrupted"})


def change_key(namespace: str, name: str) -> str:
    """The change feed's key for one function (topic TOPIC)."""
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class FunctionConfig:
    """The settings of one function version; equal configs and code mean no new version."""

    handler: str = "app.handler"
    timeout: float = 30.0
    memory: int = 128
    concurrency: int = 10
    network: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    network_allow: tuple[str, ...] = ()  # host ip:port a `network` function may reach anyway
    # Async invocations (Lambda's names and ranges): retries after a failed attempt (0-2), the
    # age after which an event is no longer tried (60 s - 6 h), and where a final failure goes
    # besides the dead-letter queue (`invoke FUNCTION` or `emit TYPE`; None: only the DLQ).
    async_retries: int = 2
    async_max_event_age: float = MAX_EVENT_AGE_S
    async_on_failure: str | None = None
    # The shape of the event a rule invocation passes (functions/shapes.py): cloudevent, s3
    # or eventbridge.
    event: str = "cloudevent"
    # What each invocation's token may do (`emit:type:GLOB`, `invoke:function:GLOB`: see
    # security/function_tokens.py); empty: the function gets no token.
    permissions: tuple[str, ...] = ()
    # The secrets (by name) put in its environment when it runs: names only, never values.
    secrets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(obj: dict[str, Any]) -> FunctionConfig:
        return FunctionConfig(
            **{
                **obj,
                "network_allow": tuple(obj.get("network_allow", ())),
                "permissions": tuple(obj.get("permissions", ())),
                "secrets": tuple(obj.get("secrets", ())),
            }
        )


@dataclass(frozen=True)
class FunctionVersion:
    namespace: str
    name: str
    version: int
    config: FunctionConfig
    code_hash: str
    layer_hash: str | None
    created_at: float
    app: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "version": self.version,
            "code_sha256": self.code_hash,
            "layer_sha256": self.layer_hash,
            "created_at": self.created_at,
            "app": self.app,
            **self.config.to_json(),
        }


@dataclass(frozen=True)
class InvocationRecord:
    """What happened to one invocation; the API's activation record."""

    id: str
    namespace: str
    function: str
    version: int
    status: InvocationStatus
    mode: Literal["sync", "async"]
    created_at: float
    cold: bool = False
    init_ms: float = 0.0
    duration_ms: float = 0.0
    max_memory_mb: float = 0.0
    error: dict[str, Any] | None = None
    result: Any = None
    logs: str = ""
    trigger: str | None = None
    finished_at: float | None = None
    attempt: int = 1  # an async invocation's attempt (1, then 2 and 3 for Lambda's retries)
    # `result` as the worker encoded it (compact JSON), when known: stored and answered as
    # is instead of being encoded again. Not part of the record's JSON form.
    result_json: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        # Field by field: asdict deep-copies `result` and `error`, which the API only serialises.
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(InvocationRecord) if f.name != "result_json")


@dataclass(frozen=True)
class PendingInvocation:
    """An async invocation accepted but not finished, stored with its payload by an earlier
    version; `resumed`: how many platform starts have resumed it already."""

    record: InvocationRecord
    payload: bytes
    resumed: int


class FunctionRepository(Protocol):
    """Functions and their immutable versions. Changing which version is current (or deleting)
    is done in a transaction that also notifies TOPIC (see FunctionService)."""

    async def current(self, namespace: str, name: str) -> FunctionVersion | None: ...

    async def version(self, namespace: str, name: str, version: int) -> FunctionVersion | None: ...

    async def versions(self, namespace: str, name: str) -> list[FunctionVersion]:
        """Every stored version, oldest first."""
        ...

    async def list_current(self, namespace: str) -> list[FunctionVersion]:
        """The current version of each function of the namespace, by name."""
        ...

    async def all_current(self) -> list[FunctionVersion]:
        """The current version of every function of every namespace."""
        ...

    async def identical_version(self, draft: FunctionVersion) -> FunctionVersion | None:
        """The newest stored version with the draft's code, layer, settings and app, if any."""
        ...

    async def next_version(self, namespace: str, name: str) -> int: ...

    async def add_version(self, fv: FunctionVersion) -> None:
        """Store a new immutable version and make it current (call it in a transaction;
        DuplicateKey if that version number is taken)."""
        ...

    async def set_current(self, namespace: str, name: str, version: int, now: float) -> None: ...

    async def delete(self, namespace: str, name: str) -> None:
        """Forget the function and its versions; invocation records stay for the audit trail."""
        ...

    async def names_of_app(self, namespace: str, app: str) -> list[str]: ...


class InvocationRepository(Protocol):
    """Invocation records: written on the hot path of every invocation (see RecordWriter)."""

    async def record(self, rec: InvocationRecord, payload: bytes | None = None) -> None:
        """Insert or replace the record (payload kept while the invocation is pending); an
        existing record keeps its `resumed` count."""
        ...

    async def record_new(self, rec: InvocationRecord) -> None:
        """The first record of an invocation, unless one with its id is there already."""
        ...

    async def record_many(self, records: Sequence[InvocationRecord]) -> None:
        """Insert or replace final records (no payloads); call it in a transaction."""
        ...

    async def invocation(self, invocation_id: str) -> InvocationRecord | None: ...

    async def invocations(
        self, namespace: str, function: str, limit: int, before: float | None = None
    ) -> list[InvocationRecord]:
        """The newest records of a function first (created before `before`, if given)."""
        ...

    async def logs_after(
        self, namespace: str, function: str, after: float, limit: int = 200
    ) -> list[InvocationRecord]:
        """Finished invocations in the order they finished, for `ondo logs --follow`."""
        ...

    async def pending(self) -> list[PendingInvocation]:
        """Async invocations stored with their payload and not finished, oldest first."""
        ...

    async def claim_resumption(self, invocation_id: str, resumed: int) -> bool:
        """Count one more start resuming the invocation, if its count is still `resumed`:
        True for the one process (of several sharing the store) that resumes it."""
        ...

    async def interrupt_running_sync(self, now: float) -> int:
        """Sync invocations cut off by a crash end `interrupted`; returns how many."""
        ...

    async def prune_records(self, before: float, limit: int) -> int:
        """Delete up to `limit` of the oldest finished records created before `before`; returns
        how many. Queued and running ones are kept whatever their age."""
        ...
