"""cgroup limits per worker (memory, pids) and whole-tree kill, with whatever this machine offers.

Layout, under the platform's own cgroup in each hierarchy:
    ondo-<platform pid>-<n>/<pool id>/          the zygote (limits for the whole version)
    ondo-<platform pid>-<n>/<pool id>/w<slot>/  one worker and everything it starts
(n tells apart runtimes of one process, so closing one never touches another's cgroups.)
cgroup v1 memory and pids give the limits; cgroup v2 `cgroup.kill` kills a worker's whole tree.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ondo.runtime.egress import attach_function_filter
from ondo.runtime.pool import WorkerHooks

if TYPE_CHECKING:
    from ondo.runtime.base import FunctionSpec

log = logging.getLogger("ondo.runtime")

CGROUP_ROOT = Path("/sys/fs/cgroup")
_instances = itertools.count(1)
WORKER_PIDS = 40  # a worker, its log thread and what it may start; a fork bomb stops here
ZYGOTE_OVERHEAD_MB = 256


@dataclass
class Cgroups:
    memory: Path | None = None
    pids: Path | None = None
    unified: Path | None = None
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return any((self.memory, self.pids, self.unified))

    def layers(self) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for name, path in (("memory", self.memory), ("pids", self.pids), ("kill", self.unified)):
            key = f"cgroups.{name}"
            if path is not None:
                state[key] = {"active": True, "path": str(path)}
            else:
                state[key] = {"active": False, "reason": self.reasons.get(name, "not found")}
        return state


def migration_tuning() -> dict[str, Any]:
    """Moving a process between cgroups waits for an RCU grace period (~8 ms on an idle
    machine) unless cgroup2 is mounted with `favordynmods`; spare workers hide that wait."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[2] == "cgroup2":
                fast = "favordynmods" in fields[3].split(",")
                hint = "" if fast else f"mount -o remount,favordynmods {fields[1]}"
                return {"favordynmods": fast, "hint": hint}
    return {"favordynmods": False, "hint": "no cgroup2 mount found"}


def _own_cgroup(controller: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and controllers == ""):
                return path
    return None


def _make_base(
    hierarchy: str, controller: str, probe_file: str, instance: int
) -> tuple[Path | None, str]:
    mount = CGROUP_ROOT / hierarchy
    own = _own_cgroup(controller)
    if own is None or not mount.is_dir():
        return None, f"no {hierarchy} cgroup hierarchy mounted at {mount}"
    base = mount / own.lstrip("/") / f"ondo-{os.getpid()}-{instance}"
    _remove_stale(base.parent)
    try:
        base.mkdir(exist_ok=True)
    except OSError as exc:
        return None, f"cannot create {base}: {exc.strerror}"
    if not (base / probe_file).exists():
        base.rmdir()
        return None, f"{base} has no {probe_file}"
    return base, ""


def _remove_stale(parent: Path) -> None:
    """Remove what platforms that died without cleaning up (kill -9) left behind, if empty."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            pid = entry.name.removeprefix("ondo-").split("-")[0]
            if entry.name.startswith("ondo-") and pid.isdigit() and not _alive(int(pid)):
                _remove_empty_tree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_empty_tree(path: Path) -> None:
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            if child.is_dir():
                _remove_empty_tree(child)
        path.rmdir()


def detect_cgroups(wanted: bool) -> Cgroups:
    found = Cgroups()
    if not wanted:
        found.reasons = dict.fromkeys(("memory", "pids", "kill"), "disabled by configuration")
        return found
    n = next(_instances)
    found.memory, found.reasons["memory"] = _make_base(
        "memory", "memory", "memory.limit_in_bytes", n
    )
    found.pids, found.reasons["pids"] = _make_base("pids", "pids", "pids.max", n)
    found.unified, found.reasons["kill"] = _make_base("unified", "", "cgroup.kill", n)
    return found


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError as exc:
        log.warning("cannot write %r to %s: %s", value, path, exc.strerror)
        return False


class CgroupHooks(WorkerHooks):
    def __init__(self, cgroups: Cgroups, egress_allow: tuple[str, ...] = ()) -> None:
        self.cg = cgroups
        self.egress_allow = egress_allow  # host ip:port every `network` function may reach
        self.limits: dict[str, tuple[int, int]] = {}  # pool id -> (memory bytes, pids)
        self.oom_baseline: dict[str, int] = {}
        self.spare: dict[str, list[list[str]]] = {}  # pool id -> empty worker cgroups
        self._lock = threading.Lock()  # adopt runs on threads (see FunctionPool._spawn)

    def _bases(self) -> list[tuple[str, Path]]:
        pairs = (("memory", self.cg.memory), ("pids", self.cg.pids), ("unified", self.cg.unified))
        return [(name, path) for name, path in pairs if path is not None]

    def zygote_cgroups(self, pool_id: str, spec: FunctionSpec) -> list[str]:
        worker_bytes = spec.memory_mb * 1024 * 1024
        self.limits[pool_id] = (worker_bytes, WORKER_PIDS)
        dirs = []
        for name, base in self._bases():
            path = base / pool_id
            path.mkdir(exist_ok=True)
            if name == "memory":
                total_mb = spec.memory_mb * (spec.concurrency + 1) + ZYGOTE_OVERHEAD_MB
                _write(path / "memory.limit_in_bytes", str(total_mb * 1024 * 1024))
            elif name == "pids":
                _write(path / "pids.max", str(WORKER_PIDS * spec.concurrency + 16))
            elif spec.network:  # before the zygote joins: its first socket is already filtered
                attach_function_filter(path, (*self.egress_allow, *spec.network_allow))
            dirs.append(str(path / "cgroup.procs"))
        # The first worker's cgroups are made now, at deploy, not on its cold start.
        first = self._make_worker_cgroups(pool_id, "w-first")
        with self._lock:
            self.spare[pool_id] = [first]
        return dirs

    def adopt(self, pool_id: str, slot: int, pid: int) -> list[str]:
        """Move a new worker into a cgroup of its own (reused from a dead worker when possible).
        Called on a thread (the move is slow): the spare lists are shared with the loop's."""
        with self._lock:
            spare = self.spare.get(pool_id)
            paths = spare.pop() if spare else None
        if paths is None:
            paths = self._make_worker_cgroups(pool_id, f"w{slot}")
        for path in paths:
            _write(Path(path) / "cgroup.procs", str(pid))
        return paths

    def _is_memory(self, path: str) -> bool:
        return self.cg.memory is not None and path.startswith(f"{self.cg.memory}/")

    def _make_worker_cgroups(self, pool_id: str, name_: str) -> list[str]:
        memory_bytes, pids = self.limits.get(pool_id, (0, WORKER_PIDS))
        made: list[str] = []
        for name, base in self._bases():
            path = base / pool_id / name_
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            if name == "memory" and memory_bytes:
                _write(path / "memory.limit_in_bytes", str(memory_bytes))
            elif name == "pids":
                _write(path / "pids.max", str(pids))
            made.append(str(path))
        self._note_oom_baseline(made)
        return made

    def _note_oom_baseline(self, paths: list[str]) -> None:
        # Read before the worker moves in (off the cold-start path); compared after it dies.
        for path in filter(self._is_memory, paths):
            self.oom_baseline[path] = _oom_kills(Path(path))

    def kill_tree(self, cgroups: list[str]) -> None:
        for path in cgroups:
            kill = Path(path) / "cgroup.kill"
            if kill.exists():
                _write(kill, "1")

    def oom_killed(self, cgroups: list[str]) -> bool:
        for path in filter(self._is_memory, cgroups):
            return _oom_kills(Path(path)) > self.oom_baseline.get(path, 0)
        return False

    def populated(self, cgroups: list[str]) -> bool:
        """Is any process (the worker or anything it started) still in its cgroups?"""
        return not all(_is_empty(Path(path)) for path in cgroups)

    def pool_oom_killed(self, pool_id: str) -> bool:
        """Did the OOM killer act in the version's own cgroup (the zygote, while importing)?"""
        if self.cg.memory is None:
            return False
        return _oom_kills(self.cg.memory / pool_id) > 0

    def peak_memory_mb(self, cgroups: list[str]) -> float:
        for path in filter(self._is_memory, cgroups):
            with contextlib.suppress(OSError, ValueError):
                peak = int((Path(path) / "memory.max_usage_in_bytes").read_text())
                return peak / (1024 * 1024)
        return 0.0

    def forget(self, cgroups: list[str]) -> None:
        """The worker is gone: keep its (empty) cgroups for the pool's next worker."""
        if not cgroups:
            return
        pool_id = Path(cgroups[0]).parent.name
        reusable = all(_is_empty(Path(path)) for path in cgroups)
        if pool_id in self.limits and reusable and not self._holds_shared_memory(cgroups):
            for path in filter(self._is_memory, cgroups):
                _write(Path(path) / "memory.max_usage_in_bytes", "0")
            self._note_oom_baseline(cgroups)
            with self._lock:
                self.spare.setdefault(pool_id, []).append(cgroups)
        else:
            for path in cgroups:
                self.oom_baseline.pop(path, None)

    def _holds_shared_memory(self, cgroups: list[str]) -> bool:
        """Does the dead worker's memory cgroup still carry tmpfs or shm pages (files it left in
        a /tmp that outlives it, where workers have no /tmp of their own)? Those are never
        reclaimed: a worker given this cgroup would start with them charged, so it gets a
        fresh one."""
        for path in filter(self._is_memory, cgroups):
            with contextlib.suppress(OSError, ValueError):
                for line in (Path(path) / "memory.stat").read_text().splitlines():
                    if line.startswith("shmem "):
                        return int(line.split()[1]) > 0
        return False

    def forget_pool(self, pool_id: str) -> None:
        self.limits.pop(pool_id, None)
        with self._lock:
            self.spare.pop(pool_id, None)
        for _, base in self._bases():
            self._remove_tree(base / pool_id)

    def close(self) -> None:
        for _, base in self._bases():
            self._remove_tree(base)

    def _remove_tree(self, path: Path) -> None:
        if not path.is_dir():
            return
        for child in sorted((p for p in path.iterdir() if p.is_dir()), reverse=True):
            self._remove_tree(child)
        if (path / "cgroup.kill").exists():
            _write(path / "cgroup.kill", "1")
        for _ in range(50):
            try:
                path.rmdir()
                return
            except OSError:
                time.sleep(0.01)
        log.warning("could not remove cgroup %s (still busy)", path)


def _is_empty(path: Path) -> bool:
    try:
        return not (path / "cgroup.procs").read_text().strip()
    except OSError:
        return False


def _oom_kills(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in (path / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    return 0
