"""Function runtime: per-version zygotes forking sandboxed, warm, reusable workers."""

from __future__ import annotations

from ondo.runtime.base import FunctionSpec, InvocationOutcome, InvocationStatus, Runtime
from ondo.runtime.layers import build_layer
from ondo.runtime.runtime import ZygoteRuntime, create_runtime
from ondo.runtime.sandbox import SandboxOptions

__all__ = [
    "FunctionSpec",
    "InvocationOutcome",
    "InvocationStatus",
    "Runtime",
    "SandboxOptions",
    "ZygoteRuntime",
    "build_layer",
    "create_runtime",
]
