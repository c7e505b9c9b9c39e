"""Functions that attack what the platform reads from them: their reply frames and log area.

Each attack is a real sandboxed function. Whatever it does to its own socket, descriptors or
memory, the platform keeps serving, the invocation ends `failed` with a reason that says what
was wrong, and nothing of the worker is left running.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from ondo.runtime import FunctionSpec, ZygoteRuntime
from tests.functional.apps import write_app
from tests.functional.hostile.harness import function_processes, healthy_answers, healthy_spec
from tests.functional.platform import RunningPlatform, wait_for
from tests.functional.runtime.helpers import (
    HEALTHY,
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)

# The handler finds its worker's socket (fd scan) and writes to it what the attack names, then
# sleeps: the platform must act on what it read, not on the worker's own reply or a timeout.
ROGUE = """
    import json, os, stat, struct, time

    def frame(header, body=b""):
        head = header if isinstance(header, bytes) else json.dumps(header).encode()
        return struct.pack("<II", len(head), len(body)) + head + body

    def attacks(rid):
        ok = {"id": rid, "status": "succeeded", "duration_ms": 1.0, "max_rss_kb": 1}
        return {
            "garbage": b"\\x05\\x00\\x00\\x00\\x00\\x00\\x00\\x00{not json",
            "header_not_utf8": frame(b"\\xff\\xfe not json"),
            "header_not_object": frame(b"[1, 2, 3]"),
            "header_nested_deep": frame(b"[" * 200000),
            "body_not_utf8": frame(ok, b"\\xff\\xfe not json"),
            "body_not_json": frame(ok, b"not json"),
            "body_lone_surrogate": frame(ok, b'["\\ud83d\\ude00", "\\ud800"]'),
            "duration_not_number": frame({**ok, "duration_ms": "slow"}, b"1"),
            "duration_infinite": frame(b'{"id": "%s", "status": "succeeded",'
                                       b' "duration_ms": 1e999}' % rid.encode(), b"1"),
            "unknown_status": frame({**ok, "status": "great"}, b"1"),
            "other_request": frame({**ok, "id": "someone-else"}, b"1"),
            "no_request_id": frame({"status": "succeeded"}, b"1"),
            "oversized": struct.pack("<II", 10, 1 << 30),
            "trickled_garbage": frame(b"\\xff\\xfe not json"),
        }

    def handler(event, context):
        for fd in range(3, 64):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    break
            except OSError:
                pass
        data = attacks(context.aws_request_id)[event["attack"]]
        if event["attack"] == "trickled_garbage":  # frames split at odd boundaries
            for i in range(len(data)):
                os.write(fd, data[i : i + 1])
                time.sleep(0.01)
        else:
            os.write(fd, data)
        time.sleep(60)
"""

ATTACKS = [
    "garbage",
    "header_not_utf8",
    "header_not_object",
    "header_nested_deep",
    "body_not_utf8",
    "body_not_json",
    "body_lone_surrogate",
    "duration_not_number",
    "duration_infinite",
    "unknown_status",
    "other_request",
    "no_request_id",
    "oversized",
    "trickled_garbage",
]

UNREADABLE = "the worker sent a reply the platform cannot read: "


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_reply_the_platform_cannot_read_fails_the_invocation_and_kills_the_worker(
    tmp_path: Path, attack: str
) -> None:
    code = write_function(tmp_path, "rogue", ROGUE)
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=90)
            outcome = await invoke(runtime, spec, {"attack": attack})
            assert outcome.status == "failed", outcome  # at once, not at the 90 s timeout
            assert outcome.error is not None
            assert outcome.error["errorType"] == "Runtime.InvalidReply"
            assert outcome.error["reason"].startswith(UNREADABLE), outcome.error
            await _worker_gone_and_others_serve(runtime, spec, healthy)

    run(scenario)


async def _worker_gone_and_others_serve(
    runtime: ZygoteRuntime, spec: FunctionSpec, healthy: FunctionSpec
) -> None:
    """Nothing of the attacking worker is left, and another function still answers."""
    zygote_pid, pids = function_processes(runtime, spec)
    assert pids <= {zygote_pid}
    await healthy_answers(runtime, healthy)


def test_a_result_that_is_not_unicode_is_the_handlers_error(tmp_path: Path) -> None:
    """A str holding a lone surrogate cannot be shown by any API answer: it fails in the worker,
    while characters outside the BMP (surrogate pairs once escaped) come back intact."""
    code = write_function(
        tmp_path,
        "texts",
        """
        def handler(event, context):
            return {"pair": "\\U0001F600", "lone": "\\ud800"} if event["lone"] else "\\U0001F600"
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code)
            assert result_of(await invoke(runtime, spec, {"lone": False})) == "\U0001f600"
            outcome = await invoke(runtime, spec, {"lone": True}, request_id="req-2")
            assert outcome.status == "failed", outcome
            assert outcome.error is not None
            assert outcome.error["errorType"] == "Runtime.ResultNotSerializable"

    run(scenario)


def test_a_zygote_that_lies_about_an_exit_status_is_killed(tmp_path: Path) -> None:
    """Import-time code runs in the zygote and can change what it reports: a wait status no
    wait status can be once made the platform raise out of the invocation, its slot lost."""
    code = write_function(
        tmp_path,
        "liar",
        """
        import os, sys
        zygote = sys.modules["__main__"].Zygote
        _send = zygote.send
        def _lie(self, message):
            if message.get("op") == "exit":
                message = {**message, "status": 1 << 40}
            _send(self, message)
        zygote.send = _lie
        def handler(event, context):
            os._exit(3)
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, concurrency=1)
            for attempt in ("req-1", "req-2"):  # the one slot is free again for the second
                outcome = await invoke(runtime, spec, request_id=attempt)
                assert outcome.status == "killed", outcome
            await healthy_answers(runtime, healthy)

    run(scenario)


def test_a_worker_that_closes_its_socket_is_killed(tmp_path: Path) -> None:
    code = write_function(
        tmp_path,
        "closer",
        """
        import os, stat, time
        def handler(event, context):
            for fd in range(3, 64):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.close(fd)
                except OSError:
                    pass
            time.sleep(60)
        """,
    )
    healthy = healthy_spec(tmp_path)

    async def scenario() -> None:
        async with started() as runtime:
            spec = make_spec(code, timeout_s=90)
            outcome = await invoke(runtime, spec)
            assert outcome.status == "killed", outcome  # at once, not at the 90 s timeout
            await _worker_gone_and_others_serve(runtime, spec, healthy)

    run(scenario)


def test_a_reply_frame_written_between_invocations_retires_the_worker(tmp_path: Path) -> None:
    """Half a frame sent while the worker is idle must not prefix the next invocation's reply."""
    code = write_function(
        tmp_path,
        "chatter",
        """
        import os, stat, threading, time
        def later(fd):
            time.sleep(0.3)
            os.write(fd, b"\\x40\\x00\\x00")
        def handler(event, context):
            if event.get("chatter"):
                fd = next(fd for fd in range(3, 64) if _is_socket(fd))
                threading.Thread(target=later, args=(fd,)).start()
            return "fine"
        def _is_socket(fd):
            try:
                return stat.S_ISSOCK(os.fstat(fd).st_mode)
            except OSError:
                return False
        """,
    )

    async def scenario() -> None:
        async with started(idle_ttl_s=3600) as runtime:  # retired for what it sent, not idleness
            spec = make_spec(code)
            assert result_of(await invoke(runtime, spec, {"chatter": True})) == "fine"
            await _wait_retired(runtime, spec.key)
            again = await invoke(runtime, spec, {}, request_id="req-2")
            assert result_of(again) == "fine" and again.cold is True

    run(scenario)


async def _wait_retired(runtime: ZygoteRuntime, key: str) -> None:
    """Wait until the pool has no warm worker left (the chatty one was retired)."""
    for _ in range(1200):
        if runtime.status()["functions"][key]["warm"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker that wrote between invocations is still warm")


# --- against a real `ondo up` -------------------------------------------------------------

TRUNCATE_LOG = """
    import os
    def handler(event, context):
        print("before the attack")
        done = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if "memfd:" in target:
                for size in (0, 1 << 30):
                    try:
                        os.ftruncate(int(fd), size)
                        done.append(f"resized to {size}")
                    except OSError as exc:
                        done.append(f"refused: {exc.strerror}")
        print("after the attack")
        return done
"""

GARBAGE_REPLY = """
    import json, os, stat, struct, time
    def handler(event, context):
        time.sleep(event["sleep"])
        fd = next(fd for fd in range(3, 64) if stat.S_ISSOCK(os.fstat(fd).st_mode))
        head = json.dumps({"id": context.aws_request_id, "status": "succeeded"}).encode()
        body = b"\\xff\\xfe not json"
        os.write(fd, struct.pack("<II", len(head), len(body)) + head + body)
        time.sleep(20)  # the platform answers on the garbage, not on this worker's own reply
"""

# Import-time code runs in the zygote, before any worker is forked from it: it can make every
# worker's hello (one byte with SCM_CREDENTIALS) something else.
BAD_HELLO = """
    import socket
    _sendmsg = socket.socket.sendmsg
    def _hello(self, buffers, *rest):
        return _sendmsg(self, [b"not hello"], *rest)
    socket.socket.sendmsg = _hello
    def handler(event, context):
        return "never runs"
"""


def _attack_app(root: Path) -> Path:
    functions: dict[str, dict[str, object]] = {
        "truncate-log": {"timeout": 30},
        "garbage-reply": {"timeout": 30},
        "bad-hello": {},
        "healthy": {},
    }
    code = {
        "truncate-log/app.py": TRUNCATE_LOG,
        "garbage-reply/app.py": GARBAGE_REPLY,
        "bad-hello/app.py": BAD_HELLO,
        "healthy/app.py": HEALTHY,
    }
    return write_app(root, functions, code)


def _healthy_answers(api: httpx.Client) -> None:
    answer = api.post("/v1/functions/healthy/invoke", json={"n": 1})
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text


def _final(api: httpx.Client, rid: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        record: dict[str, Any] = api.get(f"/v1/invocations/{rid}").json()
        return record if record["status"] not in ("queued", "running") else None

    found: dict[str, Any] = wait_for(finished)
    return found


@pytest.fixture
def attack_platform(tmp_path: Path) -> Any:
    with RunningPlatform(tmp_path / "data", apps=[_attack_app(tmp_path / "attacks")]) as running:
        yield running


def test_a_function_cannot_shrink_its_log_area_under_the_platform(
    attack_platform: RunningPlatform,
) -> None:
    with attack_platform.client() as api:
        answer = api.post("/v1/functions/truncate-log/invoke", json={})
        assert answer.status_code == 200, answer.text
        tries = answer.json()
        assert tries[0] == "refused: Operation not permitted"  # shrinking: sealed
        assert len(tries) == 2 and tries[1].startswith("refused"), tries  # growing too
        record = _final(api, answer.headers["X-Ondo-Invocation-Id"])
        assert "before the attack" in record["logs"] and "after the attack" in record["logs"]
        _healthy_answers(api)


def test_an_async_log_area_attack_neither_crashes_the_platform_nor_a_restart(
    attack_platform: RunningPlatform,
) -> None:
    with attack_platform.client() as api:
        accepted = api.post("/v1/functions/truncate-log/invoke?mode=async", json={})
        assert accepted.status_code == 202
        record = _final(api, accepted.json()["id"])
        assert record["status"] == "succeeded", record
        _healthy_answers(api)
    attack_platform.stop()
    attack_platform.start()
    with attack_platform.client() as api:
        assert _final(api, record["id"])["status"] == "succeeded"
        _healthy_answers(api)


def test_a_garbage_reply_over_http_is_a_recorded_failure_every_time(
    attack_platform: RunningPlatform,
) -> None:
    with attack_platform.client() as api:
        for sleep in (0, 0.5, 0):  # sent before and after the `running` row is written
            answer = api.post("/v1/functions/garbage-reply/invoke", json={"sleep": sleep})
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Ondo-Function-Error"] == "Unhandled"
            assert answer.json()["reason"].startswith(UNREADABLE + "a result that is not UTF-8")
            record = _final(api, answer.headers["X-Ondo-Invocation-Id"])
            assert record["status"] == "failed"
            assert record["error"]["errorType"] == "Runtime.InvalidReply"
        _healthy_answers(api)


def test_an_invocation_the_platform_cannot_run_still_ends_its_record(
    attack_platform: RunningPlatform,
) -> None:
    """No worker can start (its hello is wrong): a platform error, yet the record ends."""
    with attack_platform.client() as api:
        answer = api.post("/v1/functions/bad-hello/invoke", json={})
        assert answer.status_code == 503, answer.text
        assert "did not say hello" in answer.json()["error"]["message"]
        accepted = api.post("/v1/functions/bad-hello/invoke?mode=async", json={})
        assert accepted.status_code == 202
        records = api.get("/v1/functions/bad-hello/invocations?limit=10").json()
        assert len(records["invocations"]) == 2, records
        for record in records["invocations"]:
            record = _final(api, record["id"])
            assert record["status"] == "failed", record
            assert record["error"]["reason"] == "platform"
            assert "did not say hello" in record["error"]["errorMessage"]
        _healthy_answers(api)


def test_an_import_error_that_is_not_unicode_is_a_clear_deploy_error(
    tmp_path: Path, attack_platform: RunningPlatform
) -> None:
    """The zygote's report of a failed import is sandbox text too: a lone surrogate in it must
    not turn the deploy's 400 into a 500."""
    app = write_app(
        tmp_path / "broken",
        {"broken": {}},
        {"broken/app.py": 'raise ValueError("bad \\ud800 text")\n'},
    )
    out = attack_platform.cli("deploy", str(app))
    assert out.returncode != 0
    assert "failed to import" in out.stderr and "bad ? text" in out.stderr, out.stderr
    with attack_platform.client() as api:
        _healthy_answers(api)


def test_an_invocation_running_at_two_crashes_in_a_row_is_failed_not_resumed(
    tmp_path: Path,
) -> None:
    app = write_app(
        tmp_path / "slow",
        {
            "sleeper": {"timeout": 600},
            "healthy": {},
        },
        {
            "sleeper/app.py": """
                import time
                def handler(event, context):
                    print("started")
                    time.sleep(600)
            """,
            "healthy/app.py": HEALTHY,
        },
    )
    with RunningPlatform(tmp_path / "data", apps=[app]) as platform:
        with platform.client() as api:
            rid = api.post("/v1/functions/sleeper/invoke?mode=async", json={}).json()["id"]
            _wait_running(api, rid)
        platform.kill()  # the first crash: resumed at the next start
        platform.start()
        with platform.client() as api:
            assert _record(api, rid)["status"] in ("queued", "running")
            _wait_running(api, rid)
        platform.kill()  # the second crash while it runs again: not resumed a third time
        platform.start()
        with platform.client() as api:
            record = _record(api, rid)
            assert record["status"] == "failed", record
            assert record["error"]["reason"] == "platform_crash"
            assert record["error"]["errorType"] == "Ondo.PlatformCrash"
            _healthy_answers(api)


def _record(api: httpx.Client, rid: str) -> dict[str, Any]:
    record: dict[str, Any] = api.get(f"/v1/invocations/{rid}").json()
    return record


def _wait_running(api: httpx.Client, rid: str) -> None:
    wait_for(lambda: _record(api, rid)["status"] == "running")
