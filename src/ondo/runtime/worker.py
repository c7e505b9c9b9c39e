"""One warm worker as the platform sees it, and how a worker's death is explained."""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import signal
import struct
from dataclasses import dataclass, field
from typing import Any

from ondo.runtime.channel import WorkerChannel

LOG_HEADER = struct.Struct("<QI")  # total bytes written, bytes stored (as in bootstrap.py)
LOG_CAPTURE_BYTES = 64 * 1024


@dataclass(eq=False)
class Worker:
    slot: int
    pid: int  # as seen from the platform
    channel: WorkerChannel
    log_fd: int
    log_map: mmap.mmap
    exit_status: asyncio.Future[int]
    pidfd: int | None = None
    invocations: int = 0
    idle_since: float = 0.0
    killed_for: str | None = None  # "timeout", "idle", "retire", "protocol"
    cgroups: list[str] = field(default_factory=list)
    forgotten: bool = False

    def read_logs(self) -> str:
        total, stored = LOG_HEADER.unpack_from(self.log_map, 0)
        stored = min(stored, len(self.log_map) - LOG_HEADER.size)
        data = self.log_map[LOG_HEADER.size : LOG_HEADER.size + stored]
        text = data.decode("utf-8", "replace")
        if total > stored:
            text += f"…[truncated {total - stored} bytes]"
        return text

    def kill(self, why: str) -> None:
        """SIGKILL the worker (pidfd: never a recycled pid) and close our end."""
        if self.killed_for is None:
            self.killed_for = why
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        self.channel.close()

    def release_resources(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.log_map.close()
        for fd in (self.log_fd, self.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pidfd = None
        self.log_fd = -1


def describe_death(status: int | None, oom_killed: bool) -> dict[str, Any]:
    """Turn a wait status into {"signal", "exitCode", "reason", "errorType"}."""
    if status is None:
        return {
            "signal": None,
            "exitCode": None,
            "reason": "unknown",
            "errorType": "Runtime.Unknown",
        }
    if status == -2:
        return {
            "signal": "SIGKILL",
            "exitCode": None,
            "reason": "its zygote stopped",
            "errorType": "Runtime.ExitError",
        }
    if status == -1:
        return {
            "signal": None,
            "exitCode": None,
            "reason": "fork failed",
            "errorType": "Runtime.Unavailable",
        }
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = (
            signal.Signals(number).name
            if number in signal.Signals._value2member_map_
            else str(number)
        )
        reason = _signal_reason(number, oom_killed)
        error_type = "Runtime.OutOfMemory" if reason == "memory" else "Runtime.ExitError"
        return {"signal": name, "exitCode": None, "reason": reason, "errorType": error_type}
    code = os.waitstatus_to_exitcode(status)
    reason = "memory" if oom_killed else f"exit code {code}"
    error_type = "Runtime.OutOfMemory" if reason == "memory" else "Runtime.ExitError"
    return {"signal": None, "exitCode": code, "reason": reason, "errorType": error_type}


def _signal_reason(number: int, oom_killed: bool) -> str:
    if number == signal.SIGKILL and oom_killed:
        return "memory"
    reasons: dict[int, str] = {
        signal.SIGSYS: "seccomp",
        signal.SIGXCPU: "cpu time limit",
        signal.SIGXFSZ: "file size limit",
        signal.SIGSEGV: "crash",
        signal.SIGBUS: "crash",
        signal.SIGABRT: "abort",
        signal.SIGILL: "crash",
        signal.SIGFPE: "crash",
        signal.SIGKILL: "killed",
    }
    return reasons.get(number, "signal")  # real-time signals (34-64) are not Signals members
