"""Attacks on shared resources: memory past the limit, a fork bomb, a timeout that ignores
SIGTERM, 1 GB of output, every file descriptor it may open."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.functional.hostile.harness import (
    function_processes,
    healthy_spec,
    until_busy,
    while_healthy_answers,
)
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

LOG_BOUND = 64 * 1024 + 100


def test_memory_past_the_limit_is_killed_for_memory(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "hog",
        """
        def handler(event, context):
            hoard = []
            while True:
                hoard.append(b"x" * (16 * 1024 * 1024))
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            attack = invoke(runtime, make_spec(code, memory_mb=128, timeout_s=20))
            outcome = await while_healthy_answers(runtime, healthy, attack)
            assert outcome.status == "killed", outcome
            assert outcome.error is not None
            assert outcome.error["reason"] == "memory"
            assert outcome.error["errorType"] == "Runtime.OutOfMemory"

    run(scenario)


def test_a_fork_bomb_is_bounded_and_nothing_of_it_outlives_the_timeout(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "bomb",
        """
        import os, time
        def handler(event, context):
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.001)
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=1.5)
            bombing = asyncio.ensure_future(invoke(runtime, spec))
            await until_busy(runtime, spec)
            while len(function_processes(runtime, spec)[1]) < 4:
                await asyncio.sleep(0.01)  # until the bomb goes off
            assert len(function_processes(runtime, spec)[1]) < 200
            outcome = await while_healthy_answers(runtime, healthy, bombing)
            assert outcome.status == "timed_out"
            zygote, processes = function_processes(runtime, spec)
            assert processes <= {zygote}  # no bomb process outlived it

    run(scenario)


def test_a_timeout_that_ignores_sigterm_still_ends_everything(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "stubborn",
        """
        import signal, subprocess, time
        def handler(event, context):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            subprocess.Popen(
                ["sh", "-c", "trap '' TERM; sleep 300"], start_new_session=True
            )
            while True:
                time.sleep(0.1)
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=1.0)
            outcome = await while_healthy_answers(runtime, healthy, invoke(runtime, spec))
            assert outcome.status == "timed_out"
            assert outcome.error is not None and outcome.error["reason"] == "timeout"
            zygote, processes = function_processes(runtime, spec)
            assert processes <= {zygote}

    run(scenario)


def test_a_gigabyte_of_output_is_bounded(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "chatty",
        """
        import os, sys
        def handler(event, context):
            if event.get("forever"):
                while True:
                    print("y" * 1000)
            chunk = b"z" * (4 * 1024 * 1024)
            for _ in range(event["mb"] // 8):
                sys.stdout.write("x" * len(chunk))
                os.write(2, chunk)  # as C code or a subprocess would
            return "said a lot"
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            attack = invoke(runtime, make_spec(code, timeout_s=120), {"mb": 1024})
            outcome = await while_healthy_answers(runtime, healthy, attack)
            assert result_of(outcome) == "said a lot"
            assert len(outcome.logs.encode()) < LOG_BOUND
            truncated = re.search(r"…\[truncated (\d+) bytes\]$", outcome.logs)
            assert truncated and int(truncated[1]) > 1024**3 - LOG_BOUND  # counted, not kept
            short = make_spec(code, version=2, timeout_s=1.0)
            forever = await while_healthy_answers(
                runtime, healthy, invoke(runtime, short, {"forever": True})
            )
            assert forever.status == "timed_out"
            assert len(forever.logs.encode()) < LOG_BOUND
            assert forever.logs.startswith("y" * 1000)

    run(scenario)


def test_descriptors_exhaust_only_the_functions_own_limit(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "hoarder",
        """
        import os
        HELD = []
        def handler(event, context):
            inherited = {}
            for fd in os.listdir("/proc/self/fd"):
                try:
                    inherited[fd] = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:  # the directory listing's own descriptor
                    pass
            while True:
                try:
                    HELD.append(os.open("/dev/null", os.O_RDONLY))
                except OSError as exc:
                    return {"inherited": inherited, "opened": len(HELD), "error": exc.strerror}
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            seen = result_of(await while_healthy_answers(runtime, healthy, invoke(runtime, spec)))
            assert seen["error"] == "Too many open files"
            assert 1000 < seen["opened"] < 1024  # RLIMIT_NOFILE, not the host's limit
            # Only its own ends: stdio, the socket to the platform, its log area and log pipe.
            kinds = sorted(target.split(":")[0] for target in seen["inherited"].values())
            assert kinds == ["/dev/null", "/memfd", "pipe", "pipe", "pipe", "socket"], seen
            assert any("ondo-log-" in target for target in seen["inherited"].values())
            again = await invoke(runtime, spec)  # its warm worker holds them: its own problem
            assert again.cold is False and again.status == "failed" and again.error is not None
            assert "Too many open files" in again.error["errorMessage"]

    run(scenario)
