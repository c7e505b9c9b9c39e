"""Functions run with least privilege, on a real `ondo up` (manual clock): each invocation gets
its own short-lived token that emits and invokes only what the function's `permissions` list,
reaching the API through the network allow-list; no admin token is anywhere a function looks."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ondo.api.permissions import ROUTE_PERMISSIONS
from ondo.backends.store import open_store
from ondo.config import DEFAULT_CLUSTER
from ondo.functions.secretenv import MASK
from ondo.security.function_tokens import EXPIRY_MARGIN_S, FUNCTION_TOKEN_PREFIX
from ondo.security.policy import Permission
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform

TIMEOUT_S = 20
# Calls the API with its own token: each entry of the event is [method, path, body or null].
CALLER = """
import base64
import json
import os
import urllib.error
import urllib.request


def call(url, token, method, path, body):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def widened(token):
    # The token with its payload's scope widened to everything, under its own signature.
    body, signature = token[len("ondo_fn."):].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["scope"] = ["emit:type:*", "invoke:function:*", "read"]
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return "ondo_fn." + forged + "." + signature


def handler(event, context):
    token, url = context.ondo_token, context.ondo_api_url
    if event.get("forge"):
        token = widened(token)
    return {
        "token": token,  # masked in the record: a token printed or returned by accident
        "reversed": token[::-1],  # what the test uses: a function can always leak on purpose
        "url": url,
        "env": [os.environ.get("ONDO_TOKEN") == token, os.environ.get("ONDO_API_URL")],
        "calls": [call(url, token, *item) for item in event["calls"]],
    }
"""
# What a function without `permissions` gets: nothing.
BARE = """
import os


def handler(event, context):
    return {
        "token": context.ondo_token,
        "url": context.ondo_api_url,
        "env": sorted(name for name in os.environ if name.startswith("ONDO_")),
    }
"""
# Looks for anything shaped like an ondo token in its environment, arguments, the /proc entries
# it can read and every readable file of its sandbox but the host's system directories (bound
# read-only, 5 GB here, and nothing of ondo's is written there); tries the data dir's token file.
SNOOP = r"""
import os
import re
import sys

SHAPE = re.compile(rb"ondo_[A-Za-z0-9_.=-]{20,}")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SKIP = ("/proc", "/sys", "/dev", *SYSTEM)


def scan(found, where, data):
    for match in SHAPE.findall(data):
        text = match.decode()  # its own token would be masked in the record: say what it is
        found.append([where, "function token" if text.startswith("ondo_fn.") else text])


def read(path, limit=4 * 1024 * 1024):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def handler(event, context):
    found = []
    scan(found, "os.environ", "\n".join(f"{k}={v}" for k, v in os.environ.items()).encode())
    scan(found, "sys.argv", "\0".join(sys.argv).encode())
    scan(found, "event", repr(event).encode())
    pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    for pid in ["self", *pids]:
        for part in ("environ", "cmdline"):
            scan(found, f"/proc/{pid}/{part}", read(f"/proc/{pid}/{part}"))
    files = []
    for top, dirs, names in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP]
        for name in names:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append(path)
                scan(found, path, read(path))
    try:
        scan(found, "data dir", read(event["data_dir"] + "/admin.token", 4096) or b"")
        data_dir = os.listdir(event["data_dir"])
    except OSError as exc:
        data_dir = type(exc).__name__
    return {"found": found, "files": files, "pids": len(pids), "data_dir": data_dir}
"""


@dataclass
class Deployed:
    platform: RunningPlatform

    def admin(self) -> httpx.Client:
        return self.platform.client()

    def invoke(self, name: str, payload: Any) -> dict[str, Any]:
        with self.admin() as admin:
            answer = admin.post(f"/v1/functions/{name}/invoke", json=payload)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


HOOKS = """
sources:
  hooks:
    kind: http
    routes:
      - {method: POST, path: /reading, event: reading.via-http}
      - {method: POST, path: /alert, event: alert.via-http}
      - {method: POST, path: /target, function: target}
      - {method: POST, path: /bare, function: bare}
"""


def _app(root: Path, api: str) -> Path:
    reach = {"allow": [api]}  # the platform's port, and nothing else of the host
    allowed = {"emit": ["reading.*"], "invoke": ["target"]}
    app = write_app(
        root,
        {
            "caller": {
                "code": "./caller",
                "timeout": TIMEOUT_S,
                "network": reach,
                "permissions": allowed,
            },
            "target": {"code": "./bare"},
            "bare": {"code": "./bare", "network": reach},
            "snoop": {"code": "./snoop", "timeout": 120, "permissions": {"emit": ["x.y"]}},
        },
        {"caller/app.py": CALLER, "bare/app.py": BARE, "snoop/app.py": SNOOP},
    )
    # Token routes of an http source do what the API does: the same permissions decide.
    (app / "ondo.yaml").write_text((app / "ondo.yaml").read_text() + HOOKS)
    return app


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("fnid")
    platform = RunningPlatform(root / "data", env={"ONDO_CLOCK": "manual"})
    app = _app(root / "app", f"127.0.0.1:{platform.port}")
    with platform:
        deployed = platform.cli("deploy", str(app))
        assert deployed.returncode == 0, deployed.stderr
        yield Deployed(platform)


def _event(type_: str, event_id: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "fn/caller", "type": type_}


def test_a_function_emits_and_invokes_only_what_its_permissions_list(deployed: Deployed) -> None:
    calls = [
        ["POST", "/v1/events", _event("reading.checked", "allowed-1")],
        ["POST", "/v1/events", _event("alert.raised", "refused-1")],
        ["POST", "/v1/events", [_event("reading.x", "mixed-1"), _event("alert.y", "mixed-2")]],
        ["GET", "/v1/functions", None],
        ["GET", "/v1/events", None],
        ["POST", "/v1/functions/target/invoke", {}],
        ["POST", "/v1/functions/bare/invoke", {}],
        ["POST", "/v1/deployments", None],
        ["POST", "/v1/rules", {"name": "r", "text": "on a do emit b"}],
        ["GET", "/v1/status", None],
        ["POST", "/http/default/hooks/reading", {}],
        ["POST", "/http/default/hooks/alert", {}],
        ["POST", "/http/default/hooks/target", {}],
        ["POST", "/http/default/hooks/bare", {}],
    ]
    result = deployed.invoke("caller", {"calls": calls})
    api = [202, 403, 403, 403, 403, 200, 403, 403, 403, 404]
    assert result["calls"] == [*api, 202, 403, 200, 403]
    token = result["reversed"][::-1]
    assert token.startswith(FUNCTION_TOKEN_PREFIX)
    assert result["token"] == MASK  # the invocation's own token, masked in its record
    assert result["url"] == deployed.platform.url
    assert result["env"] == [True, result["url"]]  # set while it runs
    with deployed.admin() as admin:
        assert admin.get("/v1/events/allowed-1").json()["event"]["type"] == "reading.checked"
        for refused in ("refused-1", "mixed-1", "mixed-2"):  # a refused batch adds nothing
            assert admin.get(f"/v1/events/{refused}").status_code == 404
    trail = _audit_of(deployed.platform, "caller")
    denied = [(e["action"], e["outcome"]) for e in trail]
    assert ("POST /v1/events", "denied") in denied  # refused per event type: recorded too
    assert ("GET /v1/functions", "denied") in denied
    assert token not in json.dumps(trail)


def _audit_of(platform: RunningPlatform, principal: str) -> list[dict[str, Any]]:
    """The audit entries of a principal, read from the platform's store."""
    env = platform.env
    url = env.get("ONDO_STORE") or f"sqlite:///{platform.data_dir / 'ondo.db'}"

    async def read() -> list[dict[str, Any]]:
        store = open_store(url, cluster=env.get("ONDO_CLUSTER") or DEFAULT_CLUSTER)
        await store.open()
        try:
            found = await store.repos.audit.listing("default", principal=principal)
            return [entry.to_json() for entry in found]
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_function_token_is_refused_every_operation_but_emit_and_invoke(
    deployed: Deployed,
) -> None:
    """Every operation of the served /openapi.json (users, tokens, whoami, login, secrets,
    grants, audit, …): 403, or 404 for the platform-wide ones; none reaches its route."""
    token = deployed.invoke("caller", {"calls": []})["reversed"][::-1]
    doc = httpx.get(f"{deployed.platform.url}/openapi.json", timeout=30).json()
    bearer = {"Authorization": f"Bearer {token}"}
    checked = 0
    with httpx.Client(base_url=deployed.platform.url, headers=bearer, timeout=30) as fn:
        for path, item in doc["paths"].items():
            for method in (m.upper() for m in item if m in ("get", "put", "post", "delete")):
                permission = ROUTE_PERMISSIONS.get((method, path))
                if permission is None or permission in (Permission.EMIT, Permission.INVOKE):
                    continue  # public, or what its permissions decide (tested above)
                answer = fn.request(method, re.sub(r"\{\w+\}", "x", path), json={})
                expected = 404 if permission is Permission.PLATFORM else 403
                assert answer.status_code == expected, (method, path, answer.text)
                checked += 1
    assert checked > 30


def test_a_token_widened_by_the_function_is_refused(deployed: Deployed) -> None:
    calls = [
        ["POST", "/v1/events", _event("alert.raised", "forged-1")],
        ["POST", "/v1/events", _event("reading.checked", "forged-2")],
        ["GET", "/v1/functions", None],
    ]
    assert deployed.invoke("caller", {"calls": calls, "forge": True})["calls"] == [401] * 3


def test_each_invocation_gets_its_own_token_and_it_stops_at_expiry(deployed: Deployed) -> None:
    first = deployed.invoke("caller", {"calls": []})["reversed"][::-1]
    second = deployed.invoke("caller", {"calls": []})["reversed"][::-1]
    assert first != second
    bearer = {"Authorization": f"Bearer {first}"}
    with httpx.Client(base_url=deployed.platform.url, headers=bearer, timeout=30) as fn:
        assert fn.post("/v1/events", json=_event("reading.late", "late-1")).status_code == 202
        with deployed.admin() as admin:
            almost = TIMEOUT_S + EXPIRY_MARGIN_S - 1
            admin.post("/v1/clock/advance", json={"seconds": almost}).raise_for_status()
            assert fn.post("/v1/events", json=_event("reading.late", "late-2")).status_code == 202
            admin.post("/v1/clock/advance", json={"seconds": 1}).raise_for_status()
        expired = fn.post("/v1/events", json=_event("reading.late", "late-3"))
        assert expired.status_code == 401, expired.text
        assert first not in expired.text


def test_a_function_without_permissions_gets_no_token(deployed: Deployed) -> None:
    result = deployed.invoke("bare", {})
    assert result == {"token": None, "url": None, "env": ["ONDO_FUNCTION", "ONDO_NAMESPACE"]}


def test_no_admin_token_is_anywhere_a_function_can_look(deployed: Deployed) -> None:
    """Even when the platform itself was started with the admin token in its environment."""
    platform = deployed.platform
    admin_token = platform.token
    platform.stop()
    platform.extra_env["ONDO_TOKEN"] = admin_token  # as a shell that used the CLI might have
    try:
        platform.start()
        result = deployed.invoke("snoop", {"data_dir": str(platform.data_dir)})
    finally:
        platform.extra_env.pop("ONDO_TOKEN")
    assert "/var/task/app.py" in result["files"] and result["pids"] >= 1  # it did look
    assert result["data_dir"] == "FileNotFoundError"  # hidden from the sandbox
    assert not [hit for hit in result["found"] if admin_token in hit[1]], result["found"]
    # The scan does find tokens: its own, in $ONDO_TOKEN while it runs, and nothing else.
    assert result["found"] == [["os.environ", "function token"]]
