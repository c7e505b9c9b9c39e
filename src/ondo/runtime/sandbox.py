"""Platform side of the sandbox: the layers this machine offers, each zygote's jail settings."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ondo.errors import NetworkUnavailable
from ondo.runtime import egress
from ondo.runtime.base import FunctionSpec
from ondo.runtime.cgroups import CgroupHooks, detect_cgroups
from ondo.runtime.pool import WorkerHooks

log = logging.getLogger("ondo.runtime")

SANDBOX_UID_BASE = 2_000_000  # host uids of sandboxed functions: one per zygote, never root
NS_LAYERS = ("user", "mount", "pid", "ipc", "uts", "net")
OTHER_LAYERS = ("rootfs", "seccomp", "rlimits", "cgroups", "worker_tmp", "landlock", "egress")
_uid_serials = itertools.count(1)  # shared by every runtime of this process


@dataclass(frozen=True)
class SandboxOptions:
    enabled: bool = True  # False: plain fork from the zygote, no isolation (tests of the pool only)
    tmp_mb: int = 64  # size of each function's private /tmp
    hidden_paths: tuple[str, ...] = ()  # never visible inside (the platform's data dir)
    use_cgroups: bool = True
    extra_nproc: int = 32  # processes a worker may start beyond itself (fork bombs stop here)
    disabled_layers: tuple[str, ...] = ()  # e.g. ("rootfs",) to fall back to hiding paths
    egress_allow: tuple[str, ...] = ()  # host ip:port every `network` function may reach


@dataclass
class Sandbox:
    options: SandboxOptions
    layers_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: WorkerHooks = field(default_factory=WorkerHooks)
    root_mount: str = ""  # an empty host directory each zygote mounts its own root on

    async def detect(self) -> None:
        """Find out which layers this machine offers; warn loudly about the missing ones."""
        from ondo.runtime.probe import probe_layers

        if not self.options.enabled:
            self.layers_state = {
                name: {"active": False, "reason": "sandbox disabled by configuration"}
                for name in (*NS_LAYERS, *OTHER_LAYERS)
            }
        else:
            self.root_mount = tempfile.mkdtemp(prefix="ondo-sandbox-root-")
            self.layers_state = await probe_layers(self.root_mount)
            cgroups = detect_cgroups(self.options.use_cgroups)
            self.layers_state.update(cgroups.layers())
            self.layers_state["egress"] = egress.probe(cgroups.unified)
            for name in self.options.disabled_layers:
                self.layers_state[name] = {"active": False, "reason": "disabled by configuration"}
            if cgroups.usable:
                self.hooks = CgroupHooks(cgroups, self.options.egress_allow)
        for name, state in self.layers_state.items():
            if not state["active"]:
                log.warning(
                    "SANDBOX LAYER UNAVAILABLE: %s (%s): functions run with less isolation",
                    name,
                    state.get("reason", "unknown"),
                )

    def layers(self) -> dict[str, dict[str, Any]]:
        return {name: dict(state) for name, state in self.layers_state.items()}

    def active(self, name: str) -> bool:
        return bool(self.layers_state.get(name, {}).get("active"))

    def zygote_config(self, spec: FunctionSpec, pool_id: str) -> dict[str, Any]:
        if not self.options.enabled:
            return {
                "sandbox": False,
                "task_root": str(spec.code_dir),
                "layer_root": str(spec.layer_dir) if spec.layer_dir else None,
            }
        if spec.network and not self.active("egress"):
            why = self.layers_state.get("egress", {}).get("reason", "unknown")
            raise NetworkUnavailable(
                f"{spec.key}: `network: true` is refused on this machine: the egress filter "
                f"that keeps functions away from the host's own services is unavailable ({why}); "
                "deploy with `network: false` or enable cgroup2 (see `ondo status`)"
            )
        rooted = self.active("mount") and self.active("rootfs")
        cgroup_dirs = self.hooks.zygote_cgroups(pool_id, spec) if self.hooks else []
        return {
            "sandbox": True,
            "root_mount": self.root_mount,
            "task_root": "/var/task" if rooted else str(spec.code_dir),
            "layer_root": ("/opt/python" if rooted else str(spec.layer_dir))
            if spec.layer_dir
            else None,
            "code_dir": str(spec.code_dir),
            "layer_dir": str(spec.layer_dir) if spec.layer_dir else None,
            "python_prefix": os.path.realpath(sys.base_prefix),
            "host_uid": next_sandbox_uid(),
            "network": spec.network,
            "tmp_mb": self.options.tmp_mb,
            "nproc": spec.concurrency * (2 + self.options.extra_nproc) + 8,
            "as_bytes": _address_space_limit(spec.memory_mb, self.active("cgroups.memory")),
            "layers": {name: self.active(name) for name in self.layers_state},
            "cgroup_dirs": cgroup_dirs,
            "hidden_paths": list(self.options.hidden_paths),
        }

    def forget_pool(self, pool_id: str) -> None:
        self.hooks.forget_pool(pool_id)

    def close(self) -> None:
        self.hooks.close()
        if self.root_mount:
            with contextlib.suppress(OSError):
                os.rmdir(self.root_mount)


def next_sandbox_uid() -> int:
    """A host uid no other sandbox of this process (zygote or build) uses, nor, very likely, one of
    another platform process: every sandbox draws from the one counter."""
    return SANDBOX_UID_BASE + (os.getpid() % 4000) * 250 + next(_uid_serials) % 250


def _address_space_limit(memory_mb: int, cgroup_memory: bool) -> int:
    # With a memory cgroup the address-space limit is only a backstop (virtual size runs far
    # above resident size); without it, it is the only bound, so it is tighter.
    headroom_mb = max(1024, memory_mb * 3) if cgroup_memory else 512
    return (memory_mb + headroom_mb) * 1024 * 1024
