"""ZygoteRuntime: the Runtime the platform uses — one pool (zygote + warm workers) per version."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ondo.errors import RuntimeUnavailable
from ondo.runtime.base import (
    LOG_CAPTURE_BYTES,
    CallerIdentity,
    FunctionSpec,
    InvocationOutcome,
)
from ondo.runtime.cgroups import migration_tuning
from ondo.runtime.pool import FunctionPool
from ondo.runtime.sandbox import Sandbox, SandboxOptions

if TYPE_CHECKING:
    from ondo.config import Config

log = logging.getLogger("ondo.runtime")

LOG_AREA_HEADER = 16


class ZygoteRuntime:
    """Runs functions in sandboxed workers forked from a per-version zygote."""

    def __init__(
        self,
        idle_ttl_s: float = 60.0,
        log_capture_bytes: int = LOG_CAPTURE_BYTES,
        sandbox: SandboxOptions | None = None,
        import_timeout_s: float = 30.0,
        spare_workers: int = 1,
    ) -> None:
        self.idle_ttl_s = idle_ttl_s
        self.import_timeout_s = import_timeout_s
        self.spare_workers = spare_workers  # per version: forked ahead, for the next cold start
        self.log_capture_bytes = log_capture_bytes
        self.sandbox = Sandbox(sandbox or SandboxOptions())
        self.pools: dict[str, FunctionPool] = {}
        self._ids = itertools.count(1)
        self._started = False
        self._closed = False
        self._migration: dict[str, Any] = {}

    async def start(self) -> None:
        if self._started:
            return
        await self.sandbox.detect()
        self._migration = migration_tuning()
        self._started = True

    async def prepare(self, spec: FunctionSpec) -> None:
        pool = self._pool(spec)
        try:
            await pool.prepare()
        except BaseException:
            if self.pools.get(spec.key) is pool and not pool.busy and not pool.idle:
                del self.pools[spec.key]  # a version that cannot start keeps nothing around
                pool.closing = True  # and whoever still holds this pool cannot restart it
                await asyncio.to_thread(self.sandbox.forget_pool, pool.pool_id)
            raise

    async def invoke(
        self,
        spec: FunctionSpec,
        event: bytes,
        request_id: str,
        identity: CallerIdentity | None = None,
    ) -> InvocationOutcome:
        return await self._pool(spec).invoke(event, request_id, identity)

    async def retire(self, spec: FunctionSpec) -> None:
        pool = self.pools.pop(spec.key, None)
        if pool is not None:
            await pool.close(grace_s=spec.timeout_s)
            await asyncio.to_thread(self.sandbox.forget_pool, pool.pool_id)  # may wait on cgroups

    def status(self) -> Mapping[str, Any]:
        functions = {key: pool.status() for key, pool in self.pools.items()}
        return {
            "sandbox": self.sandbox.layers(),
            "functions": functions,
            "totals": {
                "zygotes": sum(1 for f in functions.values() if f["zygote"]),
                "workers_warm": sum(f["warm"] for f in functions.values()),
                "workers_busy": sum(f["busy"] for f in functions.values()),
                "workers_spare": sum(f["spare"] for f in functions.values()),
                "invocations": sum(f["invocations"] for f in functions.values()),
                "cold_starts": sum(f["cold_starts"] for f in functions.values()),
            },
            "idle_ttl_s": self.idle_ttl_s,
            "spare_workers": self.spare_workers,
            "cgroup_moves": self._migration,
        }

    async def close(self, grace_s: float = 10.0) -> None:
        self._closed = True
        pools, self.pools = list(self.pools.values()), {}
        await asyncio.gather(*(pool.close(grace_s) for pool in pools))
        for pool in pools:
            await asyncio.to_thread(self.sandbox.forget_pool, pool.pool_id)  # may wait on cgroups
        await asyncio.to_thread(self.sandbox.close)

    def _pool(self, spec: FunctionSpec) -> FunctionPool:
        if self._closed:
            raise RuntimeUnavailable("the runtime is shut down")
        if not self._started:
            raise RuntimeUnavailable("the runtime was not started; call `await runtime.start()`")
        pool = self.pools.get(spec.key)
        if pool is None:
            pool_id = f"z{os.getpid()}-{next(self._ids)}"
            pool = FunctionPool(
                spec,
                pool_id,
                lambda: self._zygote_config(spec, pool_id),
                self.idle_ttl_s,
                self.sandbox.hooks,
                self.import_timeout_s,
                self.spare_workers,
            )
            self.pools[spec.key] = pool
        return pool

    def _zygote_config(self, spec: FunctionSpec, pool_id: str) -> dict[str, Any]:
        config = self.sandbox.zygote_config(spec, pool_id)
        config.update(
            namespace=spec.namespace,
            name=spec.name,
            version=spec.version,
            handler=spec.handler,
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
            log_area_bytes=self.log_capture_bytes + LOG_AREA_HEADER,
            environment=_environment(spec, config["task_root"]),
        )
        return config


def _environment(spec: FunctionSpec, task_root: str) -> dict[str, str]:
    reserved = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": task_root,
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": "ondo_python3",
        "AWS_REGION": "local",
        "AWS_DEFAULT_REGION": "local",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(spec.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/ondo/{spec.namespace}/{spec.name}",
        "ONDO_NAMESPACE": spec.namespace,
        "ONDO_FUNCTION": spec.name,
    }
    return {**dict(spec.environment), **reserved}


def create_runtime(config: Config) -> ZygoteRuntime:
    """The platform's runtime, configured from its settings."""
    return ZygoteRuntime(
        idle_ttl_s=config.idle_ttl_s,
        log_capture_bytes=config.log_capture_bytes,
        sandbox=SandboxOptions(
            hidden_paths=(str(config.data_dir),), egress_allow=config.egress_allow
        ),
    )
