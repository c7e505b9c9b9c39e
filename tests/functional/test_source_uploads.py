"""Uploads drive rules: an FTP upload and a file dropped in a watched directory each invoke a
function written for Lambda's S3 or EventBridge trigger, on a running platform."""

from __future__ import annotations

import ftplib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, free_port, wait_for

S3_HANDLER = """
from urllib.parse import unquote_plus

def handler(event, context):
    record = event["Records"][0]
    return {
        "event": record["eventName"],
        "bucket": record["s3"]["bucket"]["name"],
        "key": unquote_plus(record["s3"]["object"]["key"]),
        "size": record["s3"]["object"]["size"],
        "etag": record["s3"]["object"]["eTag"],
    }
"""
BRIDGE_HANDLER = """
def handler(event, context):
    return {"type": event["detail-type"], "key": event["detail"]["key"], "from": event["source"]}
"""
CSV = b"name,mark\nalice,19\n"


def write_app(root: Path, ftp_port: int) -> Path:
    manifest: dict[str, Any] = {
        "name": "uploads-app",
        "sources": {
            "uploads": {"kind": "ftp", "port": ftp_port, "users": {"alice": {"password": "s3"}}},
            "drop": {"kind": "bucket", "path": "./inbox", "create": True, "settle": "200ms"},
        },
        "functions": {
            "process": {"code": "./process", "event": "s3"},
            "sort": {"code": "./sort", "event": "eventbridge"},
        },
        "rules": [
            {"name": "ingest", "when": "on object.created from uploads do invoke process"},
            {"name": "sorter", "when": "on object.created from drop do invoke sort"},
        ],
    }
    for name, code in (("process", S3_HANDLER), ("sort", BRIDGE_HANDLER)):
        (root / name).mkdir(parents=True)
        (root / name / "app.py").write_text(code)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[RunningPlatform, Path, int]]:
    port = free_port()
    app = write_app(tmp_path / "app", port)
    with RunningPlatform(tmp_path / "data", apps=[app]) as platform:
        yield platform, app, port


def succeeded(client: httpx.Client, function: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/functions/{function}/invocations")
    response.raise_for_status()
    return [r for r in response.json()["invocations"] if r["status"] == "succeeded"]


def connected(platform: RunningPlatform, name: str) -> bool:
    with platform.client() as client:
        return bool(client.get(f"/v1/sources/{name}").json()["state"] == "connected")


def test_an_ftp_upload_invokes_an_s3_handler(running: tuple[RunningPlatform, Path, int]) -> None:
    platform, _app, port = running
    wait_for(lambda: connected(platform, "uploads"))
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port, timeout=20)
        ftp.login("alice", "s3")
        ftp.mkd("reports")
        reply = ftp.storbinary("STOR reports/q 1.csv", io.BytesIO(CSV))
    assert reply.startswith("226")
    with platform.client() as client:
        [record] = wait_for(lambda: succeeded(client, "process"))
    assert record["trigger"] == "rule:ingest"
    assert record["result"] == {
        "event": "ObjectCreated:Put",
        "bucket": "uploads",
        "key": "alice/reports/q 1.csv",
        "size": len(CSV),
        "etag": hashlib.md5(CSV).hexdigest(),
    }
    shown = platform.cli("sources", "show", "uploads", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["state"] == "connected" and status["events"] == 1
    assert "s3" not in json.dumps(status["settings"]["users"])  # the password is masked


def test_a_dropped_file_invokes_an_eventbridge_handler(
    running: tuple[RunningPlatform, Path, int],
) -> None:
    platform, app, _port = running
    wait_for(lambda: connected(platform, "drop"))
    (app / "inbox" / "marks.csv").write_bytes(CSV)
    with platform.client() as client:
        [record] = wait_for(lambda: succeeded(client, "sort"))
    assert record["result"] == {"type": "object.created", "key": "marks.csv", "from": "drop"}
