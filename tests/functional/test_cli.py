"""The CLI people use, against a real platform: the documented `up` form, `--json` documents
(RFC 3339 UTC, no epochs), tables for people, errors that say what to do, the manual clock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import REPO, RunningPlatform, free_port, wait_for

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
            {"name": "announce", "when": "on test.go do emit test.announced"},
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
