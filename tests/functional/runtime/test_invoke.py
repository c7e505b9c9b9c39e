"""Invocation semantics of the zygote runtime, with real sandboxed workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ondo.errors import ConcurrencyExhausted, HandlerImportError
from tests.functional.runtime.helpers import (
    HEALTHY,
    SLEEPER,
    invoke,
    make_spec,
    processes_of_uid,
    result_of,
    run,
    started,
    write_function,
)


def test_success_returns_the_json_result_and_captured_logs(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "hello",
        """
        import os
        def handler(event, context):
            print("hello", event["who"])
            os.system("echo from a subprocess")
            return {"greeting": "hi " + event["who"]}
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            outcome = await invoke(runtime, make_spec(code), {"who": "ada"})
            assert result_of(outcome) == {"greeting": "hi ada"}
            assert outcome.logs == "hello ada\nfrom a subprocess\n"
            assert outcome.max_memory_mb > 1

    run(scenario)


def test_handler_exception_is_a_lambda_style_failure(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "boom",
        """
        def handler(event, context):
            raise KeyError("missing thing")
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            outcome = await invoke(runtime, spec)
            assert outcome.status == "failed"
            assert outcome.error is not None
            assert outcome.error["errorType"] == "KeyError"
            assert "missing thing" in outcome.error["errorMessage"]
            assert any("/var/task/app.py" in line for line in outcome.error["stackTrace"])
            assert not any("bootstrap" in line for line in outcome.error["stackTrace"])
            again = await invoke(runtime, spec)  # the worker survived the exception
            assert again.status == "failed" and again.cold is False

    run(scenario)


def test_result_that_is_not_json_fails_without_killing_the_worker(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "setty",
        """
        def handler(event, context):
            return {1, 2} if event.get("set") else "fine"
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            outcome = await invoke(runtime, spec, {"set": True})
            assert outcome.status == "failed"
            assert outcome.error is not None
            assert outcome.error["errorType"] == "Runtime.ResultNotSerializable"
            following = await invoke(runtime, spec, {})
            assert result_of(following) == "fine" and following.cold is False

    run(scenario)


def test_timeout_kills_the_worker_and_reports_timed_out(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "sleepy",
        """
        import time
        def handler(event, context):
            print("going to sleep")
            time.sleep(60)
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=1.0)
            outcome = await invoke(runtime, spec)
            assert outcome.status == "timed_out"
            assert outcome.error is not None and outcome.error["reason"] == "timeout"
            assert "going to sleep" in outcome.logs  # logs survive the kill
            assert runtime.status()["functions"][spec.key]["warm"] == 0

    run(scenario)


def test_context_carries_the_lambda_fields(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "ctx",
        """
        def handler(event, context):
            return {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "remaining": context.get_remaining_time_in_millis(),
                "arn": context.invoked_function_arn,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "identity": context.identity,
                "client_context": context.client_context,
            }
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, name="ctx", version=7, memory_mb=256, timeout_s=30)
            fields = result_of(await invoke(runtime, spec, request_id="req-42"))
            assert fields["aws_request_id"] == "req-42"
            assert fields["function_name"] == "ctx"
            assert fields["function_version"] == "7"
            assert fields["memory_limit_in_mb"] == "256"
            assert 25_000 < fields["remaining"] <= 30_000
            assert fields["arn"] == "arn:ondo:lambda:local:default:function:ctx:7"
            assert fields["log_group_name"] == "/ondo/default/ctx"
            assert isinstance(fields["log_stream_name"], str) and fields["log_stream_name"]
            assert fields["identity"] is None and fields["client_context"] is None

    run(scenario)


def test_environment_has_the_functions_variables_and_lambda_ones(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "env",
        """
        import os
        def handler(event, context):
            return dict(os.environ)
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, name="env", environment={"GREETING": "hola"})
            env = result_of(await invoke(runtime, spec))
            assert env["GREETING"] == "hola"
            assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
            assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
            assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
            assert env["LAMBDA_TASK_ROOT"] == "/var/task"
            assert not any(key.startswith("ONDO_DATA") for key in env)

    run(scenario)


def test_first_invocation_is_cold_and_the_next_is_warm(tmp_path: Path) -> None:
    code = write_function(tmp_path, "warm", HEALTHY)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            await runtime.prepare(spec)
            first = await invoke(runtime, spec)
            second = await invoke(runtime, spec)
            assert first.cold is True and first.init_ms > 0
            assert second.cold is False and second.init_ms == 0

    run(scenario)


def test_idle_workers_scale_to_zero_and_come_back_cold(tmp_path: Path) -> None:
    code = write_function(tmp_path, "ttl", HEALTHY)

    async def scenario() -> None:
        async with started(idle_ttl_s=0.2) as runtime:
            spec = make_spec(code)
            await invoke(runtime, spec)
            assert runtime.status()["functions"][spec.key]["warm"] == 1
            await asyncio.sleep(0.6)
            status = runtime.status()["functions"][spec.key]
            assert status["warm"] == 0 and status["zygote"] is True
            again = await invoke(runtime, spec)
            assert again.cold is True and again.status == "succeeded"

    run(scenario)


def test_concurrency_limit_raises_concurrency_exhausted(tmp_path: Path) -> None:
    code = write_function(tmp_path, "slow", SLEEPER)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, concurrency=2)
            running = [asyncio.create_task(invoke(runtime, spec, {"sleep": 2.0})) for _ in range(2)]
            while runtime.status()["functions"].get(spec.key, {}).get("busy", 0) < 2:
                await asyncio.sleep(0.01)
            with pytest.raises(ConcurrencyExhausted):
                await invoke(runtime, spec, {"sleep": 0})
            assert [result_of(o) for o in await asyncio.gather(*running)] == ["done", "done"]
            assert result_of(await invoke(runtime, spec, {"sleep": 0})) == "done"

    run(scenario)


@pytest.mark.parametrize(
    ("source", "handler", "expected"),
    [
        (
            "import json\nraise RuntimeError('bad import ' + 'here')\n",
            "app.handler",
            "bad import here",
        ),
        ("def other(event, context):\n    return 1\n", "app.handler", "has no attribute 'handler'"),
        ("handler = 42\n", "app.handler", "not a callable"),
        ("def handler(e, c):\n    return 1\n", "nomodule.handler", "No module named 'nomodule'"),
    ],
)
def test_import_failure_at_prepare_raises_with_the_traceback(
    tmp_path: Path, source: str, handler: str, expected: str
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(source)

    async def scenario() -> None:
        async with started() as runtime:
            with pytest.raises(HandlerImportError) as caught:
                await runtime.prepare(make_spec(code, handler=handler))
            message = str(caught.value)
            assert expected in message
            # Only the user's frames: a failure raised by their module shows its traceback;
            # a handler that is missing or not callable has no frame of theirs to show.
            assert ("Traceback" in message) == ("raise" in source), message
            assert "bootstrap.py" not in message and "<frozen" not in message

    run(scenario)


def test_dotted_handler_in_a_package(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "pkg",
        """
        from . import helper
        def handler(event, context):
            return helper.VALUE
        """,
        module="pkg.mod",
    )
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "helper.py").write_text("VALUE = 'from helper'\n")

    async def scenario() -> None:
        async with started() as runtime:
            outcome = await invoke(runtime, make_spec(code, handler="pkg.mod.handler"))
            assert result_of(outcome) == "from helper"

    run(scenario)


def test_status_reports_layers_pools_and_totals(tmp_path: Path) -> None:
    code = write_function(tmp_path, "st", HEALTHY)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            await invoke(runtime, spec)
            status = runtime.status()
            json.dumps(status)
            for layer in ("user", "mount", "pid", "net", "rootfs", "seccomp", "rlimits"):
                assert layer in status["sandbox"]
                assert status["sandbox"][layer]["active"] or status["sandbox"][layer]["reason"]
            assert status["totals"]["zygotes"] == 1
            assert status["totals"]["workers_warm"] == 1
            await runtime.retire(spec)
            assert runtime.status()["totals"]["zygotes"] == 0

    run(scenario)


def test_a_cancelled_invocation_frees_its_slot(tmp_path: Path) -> None:
    code = write_function(tmp_path, "cancel", SLEEPER)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, concurrency=1)
            running = asyncio.create_task(invoke(runtime, spec, {"sleep": 30}))
            await asyncio.sleep(0.3)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            assert runtime.status()["functions"][spec.key]["busy"] == 0
            assert result_of(await invoke(runtime, spec, {"sleep": 0})) == "done"

    run(scenario)


def test_a_result_over_6_mb_fails_cleanly(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "big",
        """
        def handler(event, context):
            return "x" * (event["mb"] * 1024 * 1024)
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, memory_mb=256)
            too_big = await invoke(runtime, spec, {"mb": 7})
            assert too_big.status == "failed"
            assert too_big.error is not None
            assert too_big.error["errorType"] == "Function.ResponseSizeTooLarge"
            fits = await invoke(runtime, spec, {"mb": 5})
            assert fits.status == "succeeded" and fits.cold is False
            assert fits.result is not None and len(fits.result) == 5 * 1024 * 1024 + 2

    run(scenario)


def test_the_runtime_works_on_uvloop_as_ondo_up_runs_it(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")
    code = write_function(
        tmp_path,
        "uv",
        """
        import os, time
        def handler(event, context):
            if event.get("crash"):
                os._exit(5)
            time.sleep(event.get("sleep", 0))
            print("on uvloop")
            return "fine"
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=1.0)
            first = await invoke(runtime, spec)
            assert result_of(first) == "fine" and first.logs == "on uvloop\n"
            assert (await invoke(runtime, spec, {"sleep": 10})).status == "timed_out"
            crashed = await invoke(runtime, spec, {"crash": True})
            assert crashed.status == "killed" and crashed.error is not None
            assert crashed.error["exitCode"] == 5
            assert result_of(await invoke(runtime, spec)) == "fine"

    uvloop.run(scenario())


async def _until(condition: Any, what: str, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, f"never became true: {what}"
        await asyncio.sleep(0.01)


def test_a_spare_worker_takes_the_cold_start_and_is_replaced(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "spare",
        """
        import os
        def handler(event, context):
            return os.getpid()
        """,
    )

    async def scenario() -> None:
        async with started(spare_workers=1) as runtime:
            spec = make_spec(code, concurrency=3)
            await runtime.prepare(spec)

            def pool() -> dict[str, Any]:
                return dict(runtime.status()["functions"][spec.key])

            await _until(lambda: pool()["spare"] == 1, "a spare after prepare")
            first = await invoke(runtime, spec)
            assert first.cold is True and first.status == "succeeded"
            await _until(lambda: pool()["spare"] == 1, "a new spare after the first was used")
            second = await invoke(runtime, spec)
            assert second.cold is False and result_of(second) == result_of(first)
            status = pool()
            assert status["warm"] == 1 and status["spare"] == 1
            expected = {status["zygote_pid"], *status["spare_pids"]}
            assert len(processes_of_uid(status["host_uid"])) == len(expected) + 1  # + warm

    run(scenario)


def test_spares_never_push_a_pool_past_its_concurrency(tmp_path: Path) -> None:
    code = write_function(tmp_path, "single", HEALTHY)

    async def scenario() -> None:
        async with started(idle_ttl_s=0.3, spare_workers=1) as runtime:
            spec = make_spec(code, concurrency=1)
            await runtime.prepare(spec)

            def pool() -> dict[str, Any]:
                return dict(runtime.status()["functions"][spec.key])

            await _until(lambda: pool()["spare"] == 1, "a spare after prepare")
            assert (await invoke(runtime, spec)).cold is True  # the spare became the worker
            status = pool()
            assert status["warm"] == 1 and status["spare"] == 0  # one worker: the limit
            await _until(lambda: pool()["warm"] == 0 and pool()["spare"] == 1, "reap, respare")
            again = await invoke(runtime, spec)
            assert again.cold is True and again.status == "succeeded"

    run(scenario)


def test_new_workers_are_moved_into_their_cgroups_off_the_loops_thread(tmp_path: Path) -> None:
    """The move can take 10 ms and more: on the loop's thread it would stall every other call.
    A cold start cancelled while its worker is being moved leaves no process behind."""
    code = write_function(tmp_path, "adopt", SLEEPER)

    async def scenario() -> None:
        async with started() as runtime:
            if not runtime.sandbox.active("cgroups.memory"):
                pytest.skip("no memory cgroup on this machine: nothing to move workers into")
            hooks = runtime.sandbox.hooks
            real_adopt = hooks.adopt
            threads: list[int] = []

            def adopt(pool_id: str, slot: int, pid: int) -> list[str]:
                threads.append(threading.get_ident())
                return real_adopt(pool_id, slot, pid)

            hooks.adopt = adopt  # type: ignore[method-assign]  # the real one, watched
            spec = make_spec(code, concurrency=2)
            assert result_of(await invoke(runtime, spec, {"sleep": 0})) == "done"
            assert threads and threading.get_ident() not in threads

            uid = runtime.status()["functions"][spec.key]["host_uid"]
            busy = asyncio.create_task(invoke(runtime, spec, {"sleep": 1.0}))  # the warm one
            await asyncio.sleep(0.2)
            before = len(processes_of_uid(uid))  # the zygote and the busy worker
            cold = asyncio.create_task(invoke(runtime, spec, {"sleep": 0}))  # forks another
            for _ in range(2000):
                if len(threads) >= 2:
                    break
                await asyncio.sleep(0.001)
            cold.cancel()  # most likely while the new worker is being moved
            with contextlib.suppress(asyncio.CancelledError):
                await cold
            assert result_of(await busy) == "done"
            for _ in range(100):  # the cancelled worker exits on its closed socket
                if len(processes_of_uid(uid)) <= before:
                    break
                await asyncio.sleep(0.05)
            assert len(processes_of_uid(uid)) <= before

    run(scenario)
