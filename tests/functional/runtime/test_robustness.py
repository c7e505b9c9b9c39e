"""Hostile or broken functions: each is contained, reported, and leaves the others serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ondo.errors import HandlerImportError, OndoError
from ondo.runtime import FunctionSpec, ZygoteRuntime
from tests.functional.runtime.helpers import (
    HEALTHY,
    SLEEPER,
    invoke,
    make_spec,
    pid_alive,
    processes_of_uid,
    result_of,
    run,
    started,
    write_function,
)

CRASHES = {
    "exit": ("import os\ndef handler(e, c):\n    os._exit(3)\n", None, "exit code 3"),
    "sys_exit": ("import sys\ndef handler(e, c):\n    sys.exit(4)\n", None, "exit code 4"),
    "segfault": (
        "import ctypes\ndef handler(e, c):\n    ctypes.string_at(0)\n",
        "SIGSEGV",
        "crash",
    ),
    "kill_self": (
        "import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
        "SIGKILL",
        "killed",
    ),
    "realtime_signal": (  # not a member of signal.Signals: once an exception in the platform
        "import os\ndef handler(e, c):\n    os.kill(os.getpid(), 40)\n",
        "40",
        "signal",
    ),
}


async def _healthy_still_serves(runtime: ZygoteRuntime, healthy: FunctionSpec) -> None:
    assert result_of(await invoke(runtime, healthy, {"n": 1}))["ok"] is True


@pytest.mark.parametrize("case", sorted(CRASHES))
def test_a_crashing_worker_is_reported_killed_with_signal_and_reason(
    tmp_path: Path, case: str
) -> None:
    source, signal_name, reason = CRASHES[case]
    code = write_function(tmp_path, case, source)
    healthy = make_spec(write_function(tmp_path, "healthy", HEALTHY), name="healthy")

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, name=case)
            outcome = await invoke(runtime, spec)
            assert outcome.status == "killed", outcome
            assert outcome.error is not None
            assert outcome.error["signal"] == signal_name
            assert outcome.error["reason"] == reason
            await _healthy_still_serves(runtime, healthy)
            after = await invoke(runtime, spec)  # a fresh worker from the same zygote
            assert after.status == "killed" and after.cold is True

    run(scenario)


def test_nothing_outlives_close(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "lingering",
        """
        import subprocess, time
        def handler(event, context):
            subprocess.Popen(["sleep", "300"], start_new_session=True)
            time.sleep(event["sleep"])
            return "ok"
        """,
    )

    async def scenario() -> None:
        runtime = ZygoteRuntime()
        await runtime.start()
        spec = make_spec(code, concurrency=3)
        await invoke(runtime, spec, {"sleep": 0})
        running = asyncio.create_task(invoke(runtime, spec, {"sleep": 300}))
        await asyncio.sleep(0.3)
        status = runtime.status()["functions"][spec.key]
        uid, zygote_pid = status["host_uid"], status["zygote_pid"]
        assert len(processes_of_uid(uid)) >= 4  # zygote, two workers, their sleeps
        await runtime.close(grace_s=0.2)
        outcome = await running
        assert outcome.status == "killed"
        assert processes_of_uid(uid) == []
        assert not pid_alive(zygote_pid)

    run(scenario)


def test_graceful_close_lets_in_flight_invocations_finish(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "finisher",
        """
        import time
        def handler(event, context):
            time.sleep(0.3)
            return "finished"
        """,
    )

    async def scenario() -> None:
        runtime = ZygoteRuntime()
        await runtime.start()
        spec = make_spec(code)
        running = asyncio.create_task(invoke(runtime, spec))
        await asyncio.sleep(0.1)
        await runtime.close(grace_s=5)
        assert result_of(await running) == "finished"

    run(scenario)


def test_the_pool_recovers_when_its_zygote_or_a_warm_worker_is_killed(tmp_path: Path) -> None:
    code = write_function(tmp_path, "victim", SLEEPER)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, concurrency=2)
            assert result_of(await invoke(runtime, spec)) == "done"
            status = runtime.status()["functions"][spec.key]
            warm = set(processes_of_uid(status["host_uid"])) - {status["zygote_pid"]}
            for pid in warm:
                os.kill(pid, signal.SIGKILL)  # the warm worker dies between invocations
            await asyncio.sleep(0.1)
            after_worker = await invoke(runtime, spec)
            assert result_of(after_worker) == "done" and after_worker.cold is True
            running = asyncio.create_task(invoke(runtime, spec, {"sleep": 30}))
            await asyncio.sleep(0.3)
            os.kill(status["zygote_pid"], signal.SIGKILL)
            interrupted = await running
            assert interrupted.status == "killed"
            assert interrupted.error is not None and "zygote" in interrupted.error["reason"]
            recovered = await invoke(runtime, spec)  # a new zygote, prepared on demand
            assert result_of(recovered) == "done" and recovered.cold is True
            new_status = runtime.status()["functions"][spec.key]
            assert new_status["zygote_pid"] != status["zygote_pid"]

    run(scenario)


def test_zygote_that_forges_control_messages_is_killed_and_others_keep_serving(
    tmp_path: Path,
) -> None:
    code = write_function(
        tmp_path,
        "forger",
        """
        import os, socket, stat
        for fd in range(3, 64):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    sock = socket.socket(fileno=os.dup(fd))
                    if sock.type == socket.SOCK_SEQPACKET:
                        sock.send(b"{not json")
            except OSError:
                pass
        def handler(event, context):
            return "should never run"
        """,
    )
    healthy = make_spec(write_function(tmp_path, "healthy", HEALTHY), name="healthy")

    async def scenario() -> None:
        async with started() as runtime:
            with pytest.raises(OndoError, match="protocol violation"):
                await runtime.prepare(make_spec(code, name="forger"))
            await _healthy_still_serves(runtime, healthy)
            assert "default/forger:1" not in runtime.status()["functions"]

    run(scenario)


def test_an_import_that_never_ends_fails_prepare(tmp_path: Path) -> None:
    code = write_function(tmp_path, "stuck", "while True:\n    pass\n")

    async def scenario() -> None:
        runtime = ZygoteRuntime(import_timeout_s=1.0)
        await runtime.start()
        try:
            with pytest.raises(HandlerImportError, match="did not finish importing"):
                await runtime.prepare(make_spec(code))
        finally:
            await runtime.close()

    run(scenario)


PLATFORM_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from ondo.runtime import FunctionSpec, ZygoteRuntime

async def main():
    runtime = ZygoteRuntime()
    await runtime.start()
    spec = FunctionSpec("default", "orphan", 1, Path(sys.argv[1]), "app.handler", 60.0, 128, 4,
                        False, {}, None)
    await runtime.invoke(spec, b"{}", "warm")
    running = asyncio.ensure_future(runtime.invoke(spec, b'{"sleep": 60}', "busy"))
    await asyncio.sleep(0.3)
    status = runtime.status()["functions"][spec.key]
    print(json.dumps({"uid": status["host_uid"], "zygote": status["zygote_pid"]}), flush=True)
    await running

asyncio.run(main())
"""


def test_nothing_outlives_a_platform_killed_with_sigkill(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "orphan",
        """
        import subprocess, time
        def handler(event, context):
            subprocess.Popen(["sleep", "300"], start_new_session=True)
            time.sleep(event.get("sleep", 0))
            return "ok"
        """,
    )
    platform = subprocess.Popen(
        [sys.executable, "-c", PLATFORM_SCRIPT, str(code)], stdout=subprocess.PIPE
    )
    try:
        assert platform.stdout is not None
        started = json.loads(platform.stdout.readline())
        assert len(processes_of_uid(started["uid"])) >= 4  # zygote, 2 workers, their sleeps
    finally:
        platform.kill()
        platform.wait()
        if platform.stdout is not None:
            platform.stdout.close()
    deadline = time.monotonic() + 10
    while processes_of_uid(started["uid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of_uid(started["uid"]) == []


def test_an_import_that_exhausts_memory_fails_prepare_naming_memory(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "fat_import",
        """
        HOARD = [b"x" * (8 * 1024 * 1024) for _ in range(200)]
        def handler(event, context):
            return len(HOARD)
        """,
    )
    healthy = make_spec(write_function(tmp_path, "healthy", HEALTHY), name="healthy")

    async def scenario() -> None:
        async with started() as runtime:
            with pytest.raises(HandlerImportError, match="memory"):
                await runtime.prepare(make_spec(code, memory_mb=128, concurrency=1))
            await _healthy_still_serves(runtime, healthy)

    run(scenario)


def test_closing_one_runtime_leaves_another_in_the_same_process_alone(tmp_path: Path) -> None:
    code = write_function(tmp_path, "twin", HEALTHY)

    async def scenario() -> None:
        async with started() as survivor:
            spec = make_spec(code)
            await invoke(survivor, spec)
            async with started() as closing:
                await invoke(closing, spec)
            again = await invoke(survivor, spec)
            assert result_of(again)["ok"] is True and again.cold is False

    run(scenario)
