"""The CLI people use, against a real platform: the documented `up` form, `--json` documents
(RFC 3339 UTC, no epochs), tables for people, errors that say what to do, the manual clock."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import REPO, RunningPlatform, free_port, wait_for
from tests.unit.runtime.test_layers import make_wheel

FLAKY = """
import os


def handler(event, context):
    if os.environ.get("BROKEN") == "1":
        raise RuntimeError("broken on purpose")
    return {"ok": True}
"""

EPOCH = re.compile(r"\b1[5-9]\d{8}(\.\d+)?\b")  # seconds since 1970 for 2017-2033
PY_REPR = re.compile(r"\{'\w+': ")


def write_app(root: Path, broken: bool) -> Path:
    (root / "flaky").mkdir(parents=True, exist_ok=True)
    (root / "flaky" / "app.py").write_text(FLAKY)
    manifest = {
        "name": "flaky",
        "functions": {
            "flaky": {"handler": "app.handler", "environment": {"BROKEN": str(int(broken))}}
        },
        "rules": [
            {"name": "run-flaky", "when": "on test.go do invoke flaky"},
            {
                "name": "announce",
                "when": "on test.go at most once per 1h do emit test.announced",
            },
        ],
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    return root


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[RunningPlatform, Path]]:
    """A manual-clock platform whose `flaky` function fails until redeployed fixed."""
    app = write_app(tmp_path / "flaky", broken=True)
    env = {"ONDO_CLOCK": "manual", "ONDO_ACTION_BACKOFF": "1", "ONDO_ACTION_MAX_ATTEMPTS": "2"}
    with RunningPlatform(tmp_path / "data", apps=[app], env=env) as running:
        yield running, app


def ok(platform: RunningPlatform, *args: str) -> str:
    done = platform.cli(*args)
    assert done.returncode == 0, f"ondo {' '.join(args)}: {done.stderr}"
    for text in (done.stdout, done.stderr):
        assert not EPOCH.search(text), f"an epoch in `ondo {' '.join(args)}`: {text}"
        assert not PY_REPR.search(text), f"a Python repr in `ondo {' '.join(args)}`: {text}"
    return done.stdout


def document(platform: RunningPlatform, *args: str) -> Any:
    return json.loads(ok(platform, *args, "--json"))


def _dead_letter(platform: RunningPlatform, client: httpx.Client) -> dict[str, Any]:
    event_id = ok(platform, "emit", "test.go", "--source", "tests/cli").strip()
    dead = wait_for(lambda: _advance_then_dead_letters(client))
    return {"event_id": event_id, **dead[0]}


def _advance_then_dead_letters(client: httpx.Client) -> list[dict[str, Any]]:
    """Move time past the retry backoff; the dead letters once the last attempt failed."""
    client.post("/v1/clock/advance", json={"seconds": 5}).raise_for_status()
    dead: list[dict[str, Any]] = client.get("/v1/dlq").json()["dead_letters"]
    return dead


def test_every_list_and_show_command_prints_a_json_document_and_a_table(
    flaky: tuple[RunningPlatform, Path],
) -> None:
    platform, _app = flaky
    with platform.client() as client:
        job = _dead_letter(platform, client)
    fns = document(platform, "functions", "list")
    assert [f["name"] for f in fns["functions"]] == ["flaky"]
    assert fns["functions"][0]["created_at"].endswith("Z")
    assert {"name", "version", "handler", "created_at"} <= document(
        platform, "functions", "show", "flaky"
    ).keys()
    versions = document(platform, "functions", "versions", "flaky")
    assert versions["name"] == "flaky" and versions["current"] == 1
    assert {r["name"] for r in document(platform, "rules", "list")["rules"]} == {
        "run-flaky",
        "announce",
    }
    assert {"name", "enabled", "text", "compiled", "state"} <= document(
        platform, "rules", "show", "run-flaky"
    ).keys()
    throttled = document(platform, "rules", "show", "announce")["state"]["last_fired"]
    assert all(when.endswith("Z") for when in throttled.values()) and throttled
    logged = [json.loads(line) for line in ok(platform, "logs", "flaky", "--json").splitlines()]
    assert [r["status"] for r in logged] == ["failed", "failed"]
    assert document(platform, "invocation", logged[0]["id"])["finished_at"].endswith("Z")
    status = document(platform, "status")
    assert {"version", "data_dir", "clock", "runtime"} <= status.keys()
    dead = document(platform, "dlq", "list")["dead_letters"]
    assert [d["id"] for d in dead] == [job["id"]] and dead[0]["updated_at"].endswith("Z")
    assert document(platform, "dlq", "show", str(job["id"]))["status"] == "dead"
    tailed = [json.loads(line) for line in ok(platform, "events", "tail", "--json").splitlines()]
    assert job["event_id"] in {e["event"]["id"] for e in tailed}
    shown = document(platform, "events", "show", job["event_id"])
    assert shown["event"]["id"] == job["event_id"] and shown["received_at"].endswith("Z")
    trace = document(platform, "trace", job["event_id"])
    assert {"events", "decisions", "lines"} <= trace.keys()
    assert all(d["at"].endswith("Z") for d in trace["decisions"])

    for command in (
        ["functions", "list"],
        ["functions", "show", "flaky"],
        ["functions", "versions", "flaky"],
        ["rules", "list"],
        ["rules", "show", "run-flaky"],
        ["rules", "show", "announce"],  # a throttle: its last firing is a time
        ["logs", "flaky"],
        ["invocation", logged[0]["id"]],
        ["status"],
        ["dlq", "list"],
        ["dlq", "show", str(job["id"])],
        ["events", "tail"],
        ["events", "show", job["event_id"]],
        ["trace", job["event_id"]],
    ):
        ok(platform, *command)  # people's form: no epochs, no Python reprs
    table = ok(platform, "functions", "list").splitlines()
    assert table[0].split()[:3] == ["NAME", "VERSION", "HANDLER"] and table[1].startswith("flaky")


def test_trace_tells_attempts_in_order_across_a_dlq_retry_and_the_emitted_event(
    flaky: tuple[RunningPlatform, Path],
) -> None:
    platform, app = flaky
    with platform.client() as client:
        job = _dead_letter(platform, client)
        write_app(app, broken=False)
        ok(platform, "deploy", str(app))
        ok(platform, "dlq", "retry", str(job["id"]))
        wait_for(lambda: client.get(f"/v1/dlq/{job['id']}").json()["status"] == "succeeded")
    lines = ok(platform, "trace", job["event_id"]).splitlines()
    attempts = [line.strip() for line in lines if "attempt " in line and "invocation" in line]
    assert [a.split(":")[0] for a in attempts] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "failed" in attempts[0] and "failed" in attempts[1] and "succeeded" in attempts[2]
    retry_line = next(i for i, line in enumerate(lines) if "retried from the dead-letter" in line)
    assert "attempt 3" in lines[retry_line + 1]
    emitted = next(line for line in lines if "emitted event" in line).split()[-1]
    announced = document(platform, "events", "show", emitted)
    assert announced["event"]["type"] == "test.announced"


def test_clock_advance_moves_a_manual_clock_and_is_refused_on_the_wall_clock(
    flaky: tuple[RunningPlatform, Path], tmp_path: Path
) -> None:
    platform, _app = flaky
    before = document(platform, "clock", "show")
    assert before["manual"] is True
    moved = ok(platform, "clock", "advance", "1h30m")
    assert "clock moved 1h30m" in moved
    after = document(platform, "clock", "show")
    assert after["now"] > before["now"]
    bad = platform.cli("clock", "advance", "soon")
    assert bad.returncode == 1 and "90s, 15m, 2h, 1d" in bad.stderr
    with RunningPlatform(tmp_path / "wall") as wall:
        refused = wall.cli("clock", "advance", "5m")
    assert refused.returncode == 1 and "ONDO_CLOCK=manual" in refused.stderr
    assert "HTTP 409" in refused.stderr


def test_errors_say_what_to_do(flaky: tuple[RunningPlatform, Path], tmp_path: Path) -> None:
    platform, _app = flaky
    unknown = platform.cli("invoke", "nope")
    assert unknown.returncode == 1 and "ondo functions list" in unknown.stderr
    env = {k: v for k, v in platform.env.items() if k != "ONDO_TOKEN"}
    empty = tmp_path / "elsewhere"
    no_token = subprocess.run(
        [sys.executable, "-m", "ondo", "functions", "list", "--data-dir", str(empty)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert no_token.returncode == 1
    for needed in ("ONDO_TOKEN", "--token", "--data-dir", str(empty / "admin.token")):
        assert needed in no_token.stderr, no_token.stderr


def test_up_takes_its_options_after_the_command_as_readme_shows(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ondo", "up", "--data-dir", str(data), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _healthy(port))
        assert (data / "admin.token").exists()
    finally:
        proc.terminate()
        proc.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def write_wheel_app(root: Path, requirements: str) -> Path:
    """An app whose function needs a local wheel (no index, no network)."""
    (root / "fn").mkdir(parents=True, exist_ok=True)
    make_wheel(root)
    (root / "requirements.txt").write_text(requirements)
    (root / "fn" / "app.py").write_text(
        "import tinypkg\n\ndef handler(event, context):\n    return {'ok': True}\n"
    )
    manifest = {
        "name": root.name,
        "functions": {
            root.name: {
                "code": "./fn",
                "handler": "app.handler",
                "requirements": "requirements.txt",
            }
        },
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    return root


def on_a_terminal(platform: RunningPlatform, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ondo", *args],
        env={**platform.env, "ONDO_TOKEN": platform.token},
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        cwd=REPO,
    )
    os.close(follower)
    terminal = b""
    with contextlib.suppress(OSError):  # EIO once the child closed its end
        while chunk := os.read(leader, 4096):
            terminal += chunk
    os.close(leader)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out, terminal.decode(errors="replace").replace("\r\n", "\n")


def test_deploy_shows_each_step_on_a_terminal_and_is_quiet_in_json(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    wheel = "--no-index\n./tinypkg-0.1-py3-none-any.whl\n"
    code, out, terminal = on_a_terminal(
        platform, "deploy", str(write_wheel_app(tmp_path / "a", wheel))
    )
    assert code == 0, terminal
    steps = [line.strip() for line in terminal.splitlines() if line.strip().startswith("…")]
    assert steps == [
        "… function a: installing requirements.txt",
        "… function a: resolving ./tinypkg-0.1-py3-none-any.whl",
        "… function a: installing tinypkg",
        "… function a: importing app.handler",
    ]
    assert "function a is now version 1" in out

    code, out, terminal = on_a_terminal(
        platform, "deploy", str(write_wheel_app(tmp_path / "b", wheel + "# b\n")), "--json"
    )
    assert code == 0 and terminal == ""
    assert json.loads(out)["applied"][0]["version"] == 1


def test_a_requirements_error_names_the_users_file(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    app = write_wheel_app(tmp_path / "bad", "--no-index\nno-such-package-here==1.0\n")
    failed = platform.cli("deploy", str(app))
    assert failed.returncode == 1
    assert f"{app / 'requirements.txt'}: pip could not install" in failed.stderr
    assert "ondo-deploy-" not in failed.stderr  # never the server's temporary copy


def test_rule_errors_say_keywords_are_lower_case_and_suggest_actions(
    platform: RunningPlatform,
) -> None:
    upper = platform.cli("rules", "add", "On greeting.requested do invoke hello")
    assert upper.returncode == 1 and 'keywords are lower case: write "on"' in upper.stderr
    near = platform.cli("rules", "add", "on greeting.requested do invok hello")
    assert near.returncode == 1 and 'did you mean "invoke"?' in near.stderr


@pytest.mark.parametrize("command", [["logs", "hello", "--follow"], ["events", "tail", "--follow"]])
def test_follow_keeps_printing_what_arrives(platform: RunningPlatform, command: list[str]) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "ondo", *command],
        env={**platform.env, "ONDO_TOKEN": platform.token},
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    ) as follower:
        try:
            ok(platform, "emit", "greeting.requested", "--data", '{"name": "Follower"}')
            assert follower.stdout is not None
            seen = ""
            while "Follower" not in seen:  # bounded by the platform answering; no timer here
                line = follower.stdout.readline()
                assert line, "the follower stopped"
                seen += line
        finally:
            follower.terminate()


@pytest.mark.skipif(
    not (REPO / ".venv" / ".installed").exists(), reason="make run needs the repository's .venv"
)
@pytest.mark.parametrize("how", ["make-variable", "environment"])
def test_make_run_listens_where_it_is_told_and_the_cli_follows_ondo_port(
    tmp_path: Path, how: str
) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONDO_")}
    env["ONDO_DATA_DIR"] = str(tmp_path / "state")
    argv = ["make", "-o", ".venv/.installed", "run"]  # -o: never reinstall the .venv here
    if how == "make-variable":
        argv.append(f"PORT={port}")
    else:
        env["ONDO_PORT"] = port
    with subprocess.Popen(
        argv,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as make:
        try:
            wait_for(lambda: _healthy(int(port)))
            invoked = subprocess.run(
                [sys.executable, "-m", "ondo", "invoke", "hello", "--data", '{"name": "Port"}'],
                env={**env, "ONDO_PORT": port},
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            assert invoked.returncode == 0, invoked.stderr
            assert json.loads(invoked.stdout)["message"] == "Hello, Port!"
        finally:
            os.killpg(make.pid, signal.SIGTERM)
