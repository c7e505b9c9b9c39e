"""The runtime contract: what the platform hands over (FunctionSpec) and gets back (outcome)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ondo.runtime.layers import build_layer

__all__ = [
    "CallerIdentity",
    "FunctionSpec",
    "InvocationOutcome",
    "InvocationStatus",
    "Runtime",
    "build_layer",
]

MAX_RESULT_BYTES = 6 * 1024 * 1024
LOG_CAPTURE_BYTES = 64 * 1024


@dataclass(frozen=True)
class FunctionSpec:
    namespace: str
    name: str
    version: int
    code_dir: Path  # immutable, content-addressed copy of the function's code; mounted read-only
    handler: str  # "module.function"; the module may be dotted (pkg.mod.fn)
    timeout_s: float = 3.0  # 1..900
    memory_mb: int = 128
    concurrency: int = 10  # max simultaneous invocations (= max workers) of this version
    network: bool = False  # outbound network allowed (never to the host: see egress.py)?
    environment: Mapping[str, str] = field(default_factory=dict)
    layer_dir: Path | None = None  # installed requirements (a site-packages-like dir)
    network_allow: tuple[str, ...] = ()  # "ip:port" host destinations allowed all the same

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.version}"


@dataclass(frozen=True)
class CallerIdentity:
    """What one invocation may call the platform with: its own short-lived token and the API's
    URL (context.ondo_token / ondo_api_url, $ONDO_TOKEN / $ONDO_API_URL while it runs)."""

    token: str = field(repr=False)
    api_url: str


InvocationStatus = Literal["succeeded", "failed", "timed_out", "killed"]


@dataclass(frozen=True)
class InvocationOutcome:
    status: InvocationStatus
    result: bytes | None  # JSON text of the handler's return value (succeeded only)
    error: Mapping[str, Any] | None  # {"errorMessage", "errorType", "stackTrace": [str], ...}
    cold: bool  # True if this invocation needed a new worker
    init_ms: float  # time to get the worker ready (0 when warm)
    duration_ms: float  # handler time
    max_memory_mb: float  # peak RSS of the worker
    logs: str  # captured stdout+stderr, bounded, truncated with "…[truncated N bytes]"
    value: Any = None  # `result` parsed: the runtime checked that it is UTF-8 JSON


class Runtime(Protocol):
    async def start(self) -> None: ...

    async def prepare(self, spec: FunctionSpec) -> None:
        """Start the version's zygote and import the handler; HandlerImportError if that fails."""

    async def invoke(
        self,
        spec: FunctionSpec,
        event: bytes,
        request_id: str,
        identity: CallerIdentity | None = None,
    ) -> InvocationOutcome:
        """Run one invocation (handing it `identity`, if any, for that invocation only);
        ConcurrencyExhausted when `concurrency` are already running."""

    async def retire(self, spec: FunctionSpec) -> None:
        """Stop the version's zygote and workers."""

    def status(self) -> Mapping[str, Any]:
        """JSON-able: sandbox layers, zygotes, warm/busy workers per function, totals."""

    async def close(self, grace_s: float = 10.0) -> None:
        """Let in-flight invocations finish up to grace_s, then kill every process."""
