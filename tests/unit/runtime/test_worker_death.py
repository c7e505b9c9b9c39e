"""How a worker's wait status becomes the `killed` error's signal and reason."""

from __future__ import annotations

import faulthandler
import os
import signal

import pytest

from ondo.runtime.worker import describe_death


def _status_of_child(action: str) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            faulthandler.disable()  # pytest's handler would print a traceback for the signal
            if action != "exit":
                number = getattr(signal, action)
                if number != signal.SIGKILL:
                    signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize(
    ("action", "oom", "signal_name", "reason", "error_type"),
    [
        ("exit", False, None, "exit code 3", "Runtime.ExitError"),
        ("SIGKILL", False, "SIGKILL", "killed", "Runtime.ExitError"),
        ("SIGKILL", True, "SIGKILL", "memory", "Runtime.OutOfMemory"),
        ("SIGSEGV", False, "SIGSEGV", "crash", "Runtime.ExitError"),
        ("SIGSYS", False, "SIGSYS", "seccomp", "Runtime.ExitError"),
        ("SIGXCPU", False, "SIGXCPU", "cpu time limit", "Runtime.ExitError"),
    ],
)
def test_death_is_described_from_a_real_wait_status(
    action: str, oom: bool, signal_name: str | None, reason: str, error_type: str
) -> None:
    death = describe_death(_status_of_child(action), oom)
    assert death["signal"] == signal_name
    assert death["reason"] == reason
    assert death["errorType"] == error_type
    assert death["exitCode"] == (3 if action == "exit" else None)


def test_unknown_status_says_so() -> None:
    assert describe_death(None, False)["reason"] == "unknown"
