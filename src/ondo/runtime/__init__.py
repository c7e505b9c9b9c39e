"""Function runtime: per-version zygotes forking sandboxed, warm, reusable workers.

The platform talks to one object, a `Runtime` (base.py); `create_runtime(config)` builds the
`ZygoteRuntime` (runtime.py), which keeps one `FunctionPool` (pool.py) per function version:

* prepare: a zygote (bootstrap.py, started as `python -I -S`, stdlib only) enters the sandbox
  (jail.py: user/mount/pid/ipc/uts/net namespaces, a read-only minimal root, an unprivileged
  uid, rlimits, seccomp) and imports the handler once;
* invoke: an idle warm worker answers over its own socket (channel.py), or the zygote forks a
  new one (cold start ~ a fork), which the platform moves into its own cgroups (cgroups.py);
* workers idle longer than the TTL are killed (scale to zero; the zygote stays), a timed-out
  or misbehaving worker is killed with everything it started, and its death is explained
  (worker.py: signal, exit code, memory, seccomp, timeout).

`status()["sandbox"]` says which layers are active on this machine and why others are not.
"""

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
