"""A fresh install is secure by default: every operation `/openapi.json` lists answers 401 to
a call without a token or with a garbage one, /healthz and /openapi.json aside (they hold no
data; docs/security.md), and a function deployed without `network` reaches no network."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from ondo.runtime.egress import host_addresses
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform

PUBLIC = {("get", "/healthz"), ("get", "/openapi.json")}
NO_TOKEN: dict[str, str] = {}
GARBAGE = {"Authorization": "Bearer ondo_garbage-but-well-formed-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
NOT_BEARER = {"Authorization": "Basic YWRtaW46YWRtaW4="}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    found = [
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(found) > 25, "the document was read, not an empty one"
    return found


def test_nothing_but_health_and_the_api_description_answers_without_a_token(
    platform: RunningPlatform,
) -> None:
    spec = httpx.get(f"{platform.url}/openapi.json").json()
    operations = _operations(spec)
    assert set(operations) >= PUBLIC
    answered: dict[str, int] = {}
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "x", template)  # a resource that may or may not exist
        for name, headers in (("none", NO_TOKEN), ("garbage", GARBAGE), ("basic", NOT_BEARER)):
            answer = httpx.request(
                method.upper(), f"{platform.url}{path}", headers=headers, json={}
            )
            answered[f"{method.upper()} {template} ({name})"] = answer.status_code
            if answer.status_code == 401:
                assert answer.headers["WWW-Authenticate"] == 'Bearer realm="ondo"'
                assert answer.json()["error"]["code"] == "unauthorized"
    opened = {call: code for call, code in answered.items() if code != 401}
    public = {f"{m.upper()} {p} ({n})" for m, p in PUBLIC for n in ("none", "garbage", "basic")}
    assert opened == dict.fromkeys(sorted(public), 200)


def test_a_function_deployed_without_network_reaches_nothing(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    code = """
        import socket

        def handler(event, context):
            seen = {}
            for host, port in event["targets"]:
                try:
                    with socket.create_connection((host, port), timeout=3):
                        seen[f"{host}:{port}"] = "connected"
                except OSError as exc:
                    seen[f"{host}:{port}"] = type(exc).__name__
            return seen
    """
    app = write_app(tmp_path / "offline", {"probe": {}}, {"probe/app.py": code})
    deployed = platform.cli("deploy", str(app))
    assert deployed.returncode == 0, deployed.stderr
    # the platform's own API, the host's other addresses, and the outside world
    targets = [["127.0.0.1", platform.port], ["1.1.1.1", 443], ["8.8.8.8", 53]]
    targets += [[str(a), platform.port] for a in host_addresses() if a.version == 4]
    with platform.client() as api:
        answer = api.post("/v1/functions/probe/invoke", json={"targets": targets})
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen and "connected" not in seen.values(), seen
