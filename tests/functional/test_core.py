"""The platform core through its CLI and API, on a real `ondo up` process."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import httpx

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform, wait_for

ECHO = """
import os

def handler(event, context):
    print("echo", event)
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function": context.function_name,
        "version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "level": os.environ.get("LEVEL"),
    }
"""

TROUBLE = """
import os, sys, time

def handler(event, context):
    what = event.get("do")
    if what == "raise":
        raise ValueError("bad input: " + str(event.get("why")))
    if what == "sleep":
        time.sleep(event["seconds"])
    if what == "exit":
        os._exit(3)
    if what == "set":
        return {1, 2}
    if what == "print":
        sys.stdout.write("x" * event["bytes"])
    return {"ok": True}
"""


def echo_app(root: Path, level: str = "info", body: str = ECHO) -> Path:
    return write_app(
        root,
        {
            "echo": {"timeout": 5, "environment": {"LEVEL": level}},
            "trouble": {"timeout": 2, "concurrency": 1},
        },
        {"echo/app.py": body, "trouble/app.py": TROUBLE},
    )


def test_example_app_is_deployed_and_answers(platform: RunningPlatform) -> None:
    out = platform.cli("invoke", "hello", "--data", '{"name": "Ada"}')
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["message"] == "Hello, Ada!"
    assert result["function"] == "hello" and result["version"] == "1"


def test_deploy_plan_versions_and_rollback(tmp_path: Path, platform: RunningPlatform) -> None:
    app = echo_app(tmp_path / "shop")
    dry = platform.cli("deploy", str(app), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ create    function echo" in dry.stdout and "nothing applied" in dry.stdout
    assert platform.cli("functions", "show", "echo").returncode == 1

    first = platform.cli("deploy", str(app))
    assert first.returncode == 0, first.stderr
    assert "function echo is now version 1" in first.stdout
    again = platform.cli("deploy", str(app))
    assert "= unchanged function echo" in again.stdout

    echo_app(tmp_path / "shop", level="debug")
    update = platform.cli("deploy", str(app))
    assert "~ update    function echo  changed: environment" in update.stdout
    assert "function echo is now version 2" in update.stdout

    with platform.client() as api:
        assert api.post("/v1/functions/echo/invoke", json={}).json()["level"] == "debug"
        versions = api.get("/v1/functions/echo/versions").json()
        assert versions["current"] == 2 and [v["version"] for v in versions["versions"]] == [1, 2]
        assert "* 2" in platform.cli("functions", "versions", "echo").stdout

        rolled = platform.cli("functions", "rollback", "echo", "1")
        assert rolled.returncode == 0 and "now at version 1" in rolled.stdout
        assert api.post("/v1/functions/echo/invoke", json={}).json()["level"] == "info"
        assert api.post("/v1/functions/echo/invoke?version=2", json={}).json()["level"] == "debug"
        bad = api.post("/v1/functions/echo/rollback", json={"version": 9})
        assert bad.status_code == 404 and "version 9" in bad.json()["error"]["message"]

    (app / "ondo.yaml").write_text("functions:\n  trouble: {timeout: 2, concurrency: 1}\n")
    pruned = platform.cli("deploy", str(app))
    assert "- delete    function echo" in pruned.stdout
    assert "echo" not in platform.cli("functions", "list").stdout


def test_import_failure_fails_deploy_and_previous_version_keeps_serving(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = echo_app(tmp_path / "shop")
    assert platform.cli("deploy", str(app)).returncode == 0
    echo_app(tmp_path / "shop", body="import no_such_module\n" + ECHO)
    failed = platform.cli("deploy", str(app))
    assert failed.returncode == 1
    assert "no_such_module" in failed.stderr and "ondo.yaml" in failed.stderr
    with platform.client() as api:
        answer = api.post("/v1/functions/echo/invoke", json={"n": 1})
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        assert api.get("/v1/functions/echo").json()["version"] == 1


def test_invalid_manifest_is_refused_with_file_line_and_field(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = echo_app(tmp_path / "shop")
    (app / "ondo.yaml").write_text("functions:\n  echo:\n    timeout: 5000\n")
    out = platform.cli("deploy", str(app))
    assert out.returncode == 1
    assert "ondo.yaml:3 (functions.echo.timeout): must be between 0.1 and 900" in out.stderr
    assert "Traceback" not in out.stderr


def test_sync_invoke_context_records_and_logs(tmp_path: Path, platform: RunningPlatform) -> None:
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    with platform.client() as api:
        answer = api.post("/v1/functions/echo/invoke", json={"n": 1})
        assert answer.status_code == 200
        body = answer.json()
        invocation_id = answer.headers["X-Ondo-Invocation-Id"]
        assert body["event"] == {"n": 1} and body["request_id"] == invocation_id
        assert body["function"] == "echo" and body["version"] == "1" and body["memory"] == "128"
        assert 0 < body["remaining"] <= 5000
        assert body["arn"].endswith(":function:echo:1")
        assert body["log_group"] and body["log_stream"]

        record = api.get(f"/v1/invocations/{invocation_id}").json()
        assert record["status"] == "succeeded" and record["function"] == "echo"
        assert record["version"] == 1 and "echo {'n': 1}" in record["logs"]
        for key in ("cold", "init_ms", "duration_ms", "max_memory_mb", "error"):
            assert key in record
        listed = api.get("/v1/functions/echo/invocations?limit=5").json()["invocations"]
        assert listed[0]["id"] == invocation_id
    logs = platform.cli("logs", "echo")
    assert invocation_id in logs.stdout and "echo {'n': 1}" in logs.stdout


def test_async_invoke_answers_202_and_completes(tmp_path: Path, platform: RunningPlatform) -> None:
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    out = platform.cli("invoke", "echo", "--async", "--data", '{"a": 2}')
    assert out.returncode == 0, out.stderr
    invocation_id = out.stdout.strip()
    with platform.client() as api:
        answer = api.post("/v1/functions/echo/invoke?mode=async", json={"b": 3})
        assert answer.status_code == 202 and answer.json()["id"]
        for rid in (invocation_id, answer.json()["id"]):
            record = wait_for(
                lambda rid=rid: (
                    (r := api.get(f"/v1/invocations/{rid}").json())["status"] == "succeeded" and r
                )
            )
            assert record["mode"] == "async"


def test_a_slow_async_invocation_shows_running_then_finishes(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    """Its `running` row is written late (once it outlasts a short delay), but it is written."""
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    with platform.client() as api:
        answer = api.post(
            "/v1/functions/trouble/invoke?mode=async", json={"do": "sleep", "seconds": 1.0}
        )
        rid = answer.json()["id"]
        seen = wait_for(
            lambda: (
                (status := api.get(f"/v1/invocations/{rid}").json()["status"])
                in ("running", "succeeded")
                and status
            )
        )
        assert seen == "running"
        final = wait_for(
            lambda: (r := api.get(f"/v1/invocations/{rid}").json())["status"] == "succeeded" and r
        )
        assert final["mode"] == "async" and final["finished_at"] >= final["created_at"]


def test_function_errors_are_lambda_style(tmp_path: Path, platform: RunningPlatform) -> None:
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    with platform.client() as api:
        raised = api.post("/v1/functions/trouble/invoke", json={"do": "raise", "why": "x"})
        assert raised.status_code == 200
        assert raised.headers["X-Ondo-Function-Error"] == "Unhandled"
        error = raised.json()
        assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad input: x"
        assert any("handler" in line for line in error["stackTrace"])

        not_json = api.post("/v1/functions/trouble/invoke", json={"do": "set"})
        assert not_json.status_code == 200 and "X-Ondo-Function-Error" in not_json.headers
        assert "errorMessage" in not_json.json()

        timed = api.post("/v1/functions/trouble/invoke", json={"do": "sleep", "seconds": 30})
        assert timed.status_code == 200
        assert timed.headers["X-Ondo-Function-Error"] == "timed_out"
        record = api.get(f"/v1/invocations/{timed.headers['X-Ondo-Invocation-Id']}").json()
        assert record["status"] == "timed_out" and record["duration_ms"] < 10_000

        exited = api.post("/v1/functions/trouble/invoke", json={"do": "exit"})
        assert exited.headers["X-Ondo-Function-Error"] == "killed"
        # The platform and the function both keep serving.
        assert api.post("/v1/functions/trouble/invoke", json={}).json() == {"ok": True}
        assert api.get("/healthz").status_code == 200
    cli = platform.cli("invoke", "trouble", "--data", '{"do": "raise", "why": "y"}')
    assert cli.returncode == 1 and "bad input: y" in cli.stdout


def test_platform_errors(tmp_path: Path, platform: RunningPlatform) -> None:
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    with platform.client() as api:
        missing = api.post("/v1/functions/nope/invoke", json={})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = api.post("/v1/functions/echo/invoke", content=b"{not json")
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
        big = api.post("/v1/functions/echo/invoke", content=b'"' + b"x" * (6 * 1024 * 1024) + b'"')
        assert big.status_code == 413
        bad_mode = api.post("/v1/functions/echo/invoke?mode=later", json={})
        assert bad_mode.status_code == 400
        unknown_route = api.get("/v1/nothing")
        assert (
            unknown_route.status_code == 404
            and "openapi" in unknown_route.json()["error"]["message"]
        )
    cli = platform.cli("invoke", "echo", "--data", "{oops")
    assert cli.returncode == 1 and "not valid JSON" in cli.stderr and "Traceback" not in cli.stderr


def test_plain_sync_invokes_answer_as_the_framework_route_does(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    """A plain sync call takes the fast path; one with a query string takes the framework's
    route. Both must give the same answers, errors included."""
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    with platform.client() as api:
        for body in ({"do": "ok"}, {"do": "raise", "why": "z"}):
            fast = api.post("/v1/functions/trouble/invoke", json=body)
            routed = api.post("/v1/functions/trouble/invoke?namespace=default", json=body)
            assert (fast.status_code, fast.json()["errorMessage" if "why" in body else "ok"]) == (
                routed.status_code,
                routed.json()["errorMessage" if "why" in body else "ok"],
            )
            for header in ("X-Ondo-Function-Version", "X-Ondo-Function-Error", "Content-Type"):
                assert fast.headers.get(header) == routed.headers.get(header), header
            # The record of a call answered this way is there for the very next reader.
            rid = fast.headers["X-Ondo-Invocation-Id"]
            assert (
                httpx.get(f"{platform.url}/v1/invocations/{rid}", headers=api.headers).json()["id"]
                == rid
            )
        empty = api.post("/v1/functions/echo/invoke", content=b"")
        assert empty.status_code == 200 and empty.json()["event"] is None
    wrong = httpx.post(
        f"{platform.url}/v1/functions/echo/invoke",
        json={},
        headers={"Authorization": "Bearer nope"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    anonymous = httpx.post(f"{platform.url}/v1/functions/echo/invoke", json={})
    assert anonymous.status_code == 401 and "missing bearer token" in anonymous.text


def test_concurrency_exhausted_answers_429(tmp_path: Path, platform: RunningPlatform) -> None:
    assert platform.cli("deploy", str(echo_app(tmp_path / "shop"))).returncode == 0
    import threading

    with platform.client() as api:
        slow = threading.Thread(
            target=api.post,
            args=("/v1/functions/trouble/invoke",),
            kwargs={"json": {"do": "sleep", "seconds": 1.5}},
        )
        slow.start()
        time.sleep(0.5)
        busy = httpx.post(
            f"{platform.url}/v1/functions/trouble/invoke",
            json={},
            headers={"Authorization": f"Bearer {platform.token}"},
        )
        slow.join()
    assert busy.status_code == 429 and busy.headers["Retry-After"]
    assert busy.json()["error"]["code"] == "concurrency_exhausted"


def test_auth_health_metrics_openapi(platform: RunningPlatform) -> None:
    token_file = platform.data_dir / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert httpx.get(f"{platform.url}/healthz").json()["status"] == "ok"
    denied = httpx.get(f"{platform.url}/v1/functions")
    assert denied.status_code == 401 and "Bearer" in denied.json()["error"]["message"]
    wrong = httpx.get(f"{platform.url}/v1/functions", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    with platform.client() as api:
        api.post("/v1/functions/hello/invoke", json={})
        assert httpx.get(f"{platform.url}/metrics").status_code == 401  # takes a token too
        metrics = api.get("/metrics").text
        assert (
            'ondo_invocations_total{function="hello",namespace="default",status="succeeded"}'
            in metrics
        )
        assert "ondo_invocation_duration_seconds_bucket" in metrics
        assert "ondo_cold_starts_total" in metrics and "ondo_pool_workers_warm" in metrics
        spec = httpx.get(f"{platform.url}/openapi.json").json()
        assert "/v1/functions/{name}/invoke" in spec["paths"]
        assert api.get("/v1/status").json()["runtime"]
    env_cli = platform.cli("functions", "list")
    assert env_cli.returncode == 0 and "hello" in env_cli.stdout


def test_restart_keeps_everything_deployed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = echo_app(tmp_path / "shop")
    with RunningPlatform(data) as first:
        assert first.cli("deploy", str(app)).returncode == 0
        token = first.token
    with RunningPlatform(data) as second:
        assert second.token == token
        with second.client() as api:
            assert api.post("/v1/functions/echo/invoke", json={"x": 1}).json()["event"] == {"x": 1}
