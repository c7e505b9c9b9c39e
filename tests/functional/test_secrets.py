"""Secrets on a real `ondo up` with real sandboxes: set from the CLI, handed only to the
functions that declare them, rotated into the next invocation, and never left behind in a
record, an answer, `ondo logs`, the server's log or the database files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform

FIRST = "hunter2-first-value"
SECOND = "correct-horse-second"
OTHER = "undeclared-api-key"
READER = """
import os

def handler(event, context):
    value = os.environ.get("DB_PASSWORD")
    print("connecting with", value)  # careless, as functions are
    if event.get("fail"):
        raise RuntimeError(f"login refused for password {value}")
    return {
        "reversed": value[::-1] if value else None,  # proves the value without showing it
        "echo": value,
        "nested": {value: [value]} if value else None,
        "undeclared": os.environ.get("API_KEY"),
    }
"""
LEAKY = """
import os

def handler(event, context):
    raise ValueError(os.environ["FILE_CHECK"])
"""
BROKEN_IMPORT = """
import os

raise RuntimeError("cannot start with " + os.environ["IMPORT_CHECK"])
"""
THIEF = """
import os

def handler(event, context):
    found = {"environ": [], "files": {}}
    for pid in os.listdir("/proc"):  # every process it can see, its environment
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    found["environ"].append(handle.read().decode(errors="replace"))
            except OSError:
                pass
    for path in event["paths"]:
        try:
            with open(path, "rb") as handle:
                found["files"][path] = handle.read().decode(errors="replace")
        except OSError as exc:
            found["files"][path] = type(exc).__name__
    found["env"] = dict(os.environ)
    return found
"""
HOLDER = """
import os

def handler(event, context):
    return len(os.environ["HELD"])
"""
PLAIN = """
import os

def handler(event, context):
    return {"db": os.environ.get("DB_PASSWORD"), "api": os.environ.get("API_KEY")}
"""


def _app(root: Path) -> Path:
    return write_app(
        root,
        {
            "reader": {"code": "./reader", "timeout": 10, "secrets": ["DB_PASSWORD"]},
            "plain": {"code": "./plain", "timeout": 10},
        },
        {"reader/app.py": READER, "plain/app.py": PLAIN},
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    root = tmp_path_factory.mktemp("secrets")
    with RunningPlatform(root / "data") as running:
        yield running


def _ok(platform: RunningPlatform, *args: str, stdin: str | None = None) -> str:
    done = platform.cli(*args, input=stdin)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _invoke(client: httpx.Client, name: str, event: dict[str, Any]) -> httpx.Response:
    answer = client.post(f"/v1/functions/{name}/invoke", json=event)
    assert answer.status_code == 200, answer.text
    return answer


def test_secrets_reach_only_declaring_functions_and_leave_no_trace(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    app = _app(tmp_path / "vault")
    refused = platform.cli("deploy", str(app))
    assert refused.returncode == 1
    assert "ondo.yaml:" in refused.stderr and "(functions.reader.secrets)" in refused.stderr
    assert "ondo secrets set DB_PASSWORD" in refused.stderr

    assert "created" in _ok(platform, "secrets", "set", "DB_PASSWORD", stdin=FIRST + "\n")
    _ok(platform, "secrets", "set", "API_KEY", stdin=OTHER)
    _ok(platform, "deploy", str(app))
    listed = json.loads(_ok(platform, "secrets", "list", "--json"))["secrets"]
    assert [s["name"] for s in listed] == ["API_KEY", "DB_PASSWORD"]
    assert {s["created_by"] for s in listed} == {"admin"}
    table = _ok(platform, "secrets", "list")
    assert "DB_PASSWORD" in table and FIRST not in table and OTHER not in table

    with platform.client() as client:
        result = _invoke(client, "reader", {}).json()
        assert result["reversed"] == FIRST[::-1]  # the function had the value
        assert result["echo"] == "***" and result["nested"] == {"***": ["***"]}
        assert result["undeclared"] is None  # API_KEY was not declared
        assert _invoke(client, "plain", {}).json() == {"db": None, "api": None}

        failed = _invoke(client, "reader", {"fail": True})
        assert failed.headers["X-Ondo-Function-Error"] == "Unhandled"
        assert FIRST not in failed.text and "login refused for password ***" in failed.text
        record = client.get(f"/v1/invocations/{failed.headers['X-Ondo-Invocation-Id']}")
        assert record.status_code == 200 and FIRST not in record.text
        assert "connecting with ***" in record.json()["logs"]
        shown = client.get("/v1/functions/reader").json()
        assert shown["secrets"] == ["DB_PASSWORD"] and FIRST not in json.dumps(shown)
        assert FIRST not in client.get("/v1/functions/reader/invocations").text

    logs = _ok(platform, "logs", "reader")
    assert "connecting with ***" in logs and FIRST not in logs

    # rotation: the next invocation has the new value (its zygote was restarted)
    assert "updated" in _ok(platform, "secrets", "set", "DB_PASSWORD", stdin=SECOND)
    with platform.client() as client:
        assert _invoke(client, "reader", {}).json()["reversed"] == SECOND[::-1]
        _invoke(client, "reader", {"fail": True})
    logs = _ok(platform, "logs", "reader", "--json")
    assert SECOND not in logs and FIRST not in logs

    # deleted: the function fails, saying how to fix it, until it is set again
    _ok(platform, "secrets", "delete", "DB_PASSWORD")
    with platform.client() as client:
        gone = client.post("/v1/functions/reader/invoke", json={})
        assert gone.status_code == 409 and "ondo secrets set DB_PASSWORD" in gone.text
    for leaked in (FIRST, SECOND, OTHER):
        assert leaked not in platform.log_path.read_text(errors="replace")


@pytest.mark.embedded_only
def test_no_file_of_the_data_dir_holds_a_value(platform: RunningPlatform, tmp_path: Path) -> None:
    _ok(platform, "secrets", "set", "FILE_CHECK", stdin="file-check-value-77")
    app = write_app(
        tmp_path / "filecheck",
        {"leaky": {"code": "./leaky", "timeout": 10, "secrets": ["FILE_CHECK"]}},
        {"leaky/app.py": LEAKY},
    )
    _ok(platform, "deploy", str(app))
    with platform.client() as client:
        for _ in range(3):
            assert "file-check-value-77" not in _invoke(client, "leaky", {}).text
        client.get("/v1/functions/leaky/logs")  # the records are committed before it answers
    values = [b"file-check-value-77", FIRST.encode(), SECOND.encode(), OTHER.encode()]
    for path in platform.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [v for v in values if v in data], path


def test_bad_input_is_refused_clearly(platform: RunningPlatform) -> None:
    empty = platform.cli("secrets", "set", "EMPTY", input="")
    assert empty.returncode == 1 and "the value is empty" in empty.stderr
    lower = platform.cli("secrets", "set", "db_password", input="x")
    assert lower.returncode == 1 and "must match" in lower.stderr
    missing = platform.cli("secrets", "delete", "NEVER_SET")
    assert missing.returncode == 1 and "ondo secrets list" in missing.stderr
    with platform.client() as client:
        big = client.put("/v1/secrets/BIG", content=b"x" * (64 * 1024 + 1))
        assert big.status_code == 413
        names = {s["name"] for s in client.get("/v1/secrets").json()["secrets"]}
        assert not names & {"BIG", "EMPTY"}


def test_an_import_error_at_deploy_is_masked(platform: RunningPlatform, tmp_path: Path) -> None:
    _ok(platform, "secrets", "set", "IMPORT_CHECK", stdin="import-check-value-99")
    app = write_app(
        tmp_path / "importer",
        {"importer": {"code": "./importer", "timeout": 10, "secrets": ["IMPORT_CHECK"]}},
        {"importer/app.py": BROKEN_IMPORT},
    )
    for dry_run in (["--dry-run"], []):
        failed = platform.cli("deploy", str(app), *dry_run)
        assert failed.returncode == 1, failed.stdout
        assert "cannot start with ***" in failed.stderr, failed.stderr  # the value was there
        assert "import-check-value-99" not in failed.stderr + failed.stdout
    assert "import-check-value-99" not in platform.log_path.read_text(errors="replace")


def test_a_function_cannot_reach_a_secret_it_did_not_declare(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    """Another function's secret: not in its sandbox's processes, not in the data dir's key file
    or database, which its sandbox does not show (tests/functional/hostile/__init__.py)."""
    held = "held-by-another-function-31"
    _ok(platform, "secrets", "set", "HELD", stdin=held)
    app = write_app(
        tmp_path / "heist",
        {
            "holder": {"code": "./holder", "timeout": 10, "secrets": ["HELD"]},
            "thief": {"code": "./thief", "timeout": 10},
        },
        {"holder/app.py": HOLDER, "thief/app.py": THIEF},
    )
    _ok(platform, "deploy", str(app))
    data = platform.data_dir.resolve()
    paths = [str(data / "secrets.key"), str(data / "ondo.db"), str(data / "admin.token")]
    with platform.client() as client:
        assert _invoke(client, "holder", {}).json() == len(held)  # its zygote holds the value
        found = _invoke(client, "thief", {"paths": paths}).json()
    assert found["environ"], found  # it did see processes: its own at least
    assert not [e for e in found["environ"] if held in e]
    assert "HELD" not in found["env"]
    assert all(v in ("FileNotFoundError", "PermissionError") for v in found["files"].values())
