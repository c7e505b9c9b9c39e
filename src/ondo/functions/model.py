"""Functions as declared, as stored (immutable versions), and their invocation records."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
HANDLER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
MAX_TIMEOUT_S = 900
MAX_RETRIES = 2  # async invocations: Lambda's MaximumRetryAttempts range is 0-2
MIN_EVENT_AGE_S, MAX_EVENT_AGE_S = 60.0, 21600.0  # Lambda's MaximumEventAgeInSeconds range
DEFAULT_NAMESPACE = "default"

InvocationStatus = Literal[
    "queued", "running", "succeeded", "failed", "timed_out", "killed", "interrupted"
]
FINAL_STATUSES = frozenset({"succeeded", "failed", "timed_out", "killed", "interrupted"})


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(obj: dict[str, Any]) -> FunctionConfig:
        return FunctionConfig(**{**obj, "network_allow": tuple(obj.get("network_allow", ()))})


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
