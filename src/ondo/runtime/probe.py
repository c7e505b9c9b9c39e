"""Ask the machine which sandbox layers work: jail.py tries each one in a throwaway child."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ondo.runtime.zygote import JAIL, SANDBOX_PYTHON

PROBE_TIMEOUT_S = 30.0


_machine_layers: dict[str, dict[str, Any]] | None = None  # the machine does not change


async def probe_layers(root_mount: str) -> dict[str, dict[str, Any]]:
    global _machine_layers
    if _machine_layers is None:
        _machine_layers = await _probe(root_mount)
    return {name: dict(state) for name, state in _machine_layers.items()}


async def _probe(root_mount: str) -> dict[str, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        SANDBOX_PYTHON,
        "-I",
        "-S",
        str(JAIL),
        "probe",
        root_mount,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return _all_unavailable(f"the sandbox probe did not finish in {PROBE_TIMEOUT_S:.0f} s")
    try:
        layers = json.loads(out)
    except ValueError:
        return _all_unavailable(f"the sandbox probe failed: {err.decode(errors='replace')[-500:]}")
    return {str(name): dict(state) for name, state in layers.items()}


def _all_unavailable(reason: str) -> dict[str, dict[str, Any]]:
    names: tuple[str, ...]
    names = ("user", "mount", "pid", "ipc", "uts", "net", "rootfs", "seccomp", "rlimits")
    names += ("worker_tmp", "landlock")
    return {name: {"active": False, "reason": reason} for name in names}
