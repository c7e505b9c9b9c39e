"""Request rate limits on a real `ondo up`: per principal (routes and the invoke fast path),
per address for calls without a valid token, per http source and address; 429 + Retry-After
every way in, and the CLI's message."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.functional.platform import RunningPlatform

# One token back every 1000 s: nothing refills while the test runs.
SLOW = "0.001"


def _app(root: Path) -> Path:
    root.mkdir(parents=True)
    manifest = {
        "name": "rated",
        "functions": {"echo": {}},
        "sources": {
            "hook": {
                "kind": "http",
                "routes": [
                    {"method": "POST", "path": "/ping", "event": "test.hooked", "auth": "public"}
                ],
            }
        },
    }
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    (root / "echo").mkdir()
    (root / "echo" / "app.py").write_text("def handler(event, context):\n    return event\n")
    return root


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1


def test_each_principal_has_its_own_bucket_on_every_path(tmp_path: Path) -> None:
    env = {"ONDO_RATE_LIMIT_PRINCIPAL": f"{SLOW}:5"}
    with RunningPlatform(tmp_path / "data", [_app(tmp_path / "rated")], env=env) as p:
        admin = {"Authorization": f"Bearer {p.token}"}
        issued = httpx.post(
            f"{p.url}/v1/tokens", json={"principal": "other", "namespace": "default"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        for n in range(4):  # the fast path and the app's routes take from one bucket
            invoked = httpx.post(f"{p.url}/v1/functions/echo/invoke", json={"n": n}, headers=admin)
            assert invoked.status_code == 200, invoked.text
        fast = httpx.post(f"{p.url}/v1/functions/echo/invoke", json={}, headers=admin)
        _refused(fast)
        assert fast.json()["error"]["code"] == "rate_limited"
        assert "principal 'admin'" in fast.json()["error"]["message"]
        _refused(httpx.get(f"{p.url}/v1/functions", headers=admin))
        _refused(httpx.post(f"{p.url}/v1/functions/echo/invoke?mode=async", headers=admin))
        cli = p.cli("functions", "list")
        assert cli.returncode == 1
        assert "is limiting this caller's request rate: wait" in cli.stderr, cli.stderr
        other = {"Authorization": f"Bearer {issued.json()['token']}"}
        assert httpx.get(f"{p.url}/v1/functions", headers=other).status_code == 200
        assert httpx.get(f"{p.url}/healthz").status_code == 200  # never limited


def test_calls_without_a_valid_token_are_limited_by_address(tmp_path: Path) -> None:
    env = {"ONDO_RATE_LIMIT_ANONYMOUS": f"{SLOW}:3"}
    with RunningPlatform(tmp_path / "data", env=env) as p:
        garbage = {"Authorization": "Bearer not-a-token"}
        assert httpx.get(f"{p.url}/v1/functions", headers=garbage).status_code == 401
        assert httpx.post(f"{p.url}/v1/functions/x/invoke", headers=garbage).status_code == 401
        assert httpx.get(f"{p.url}/openapi.json").status_code == 200
        refused = httpx.get(f"{p.url}/v1/events")
        _refused(refused)
        assert "this address without a token" in refused.json()["error"]["message"]
        _refused(httpx.post(f"{p.url}/v1/functions/x/invoke", headers=garbage))
        _refused(httpx.get(f"{p.url}/openapi.json"))
        # a valid token from the same address is not held back by its address's bucket
        with p.client() as api:
            assert api.get("/v1/functions").status_code == 200


def test_http_source_routes_are_limited_by_source_and_address(tmp_path: Path) -> None:
    env = {"ONDO_RATE_LIMIT_SOURCE": f"{SLOW}:2"}
    with RunningPlatform(tmp_path / "data", [_app(tmp_path / "rated")], env=env) as p:
        url = f"{p.url}/http/default/hook/ping"
        assert [httpx.post(url, json={}).status_code for _ in range(2)] == [202, 202]
        refused = httpx.post(url, json={})
        _refused(refused)
        assert refused.json() == {"message": "Too Many Requests"}
        with p.client() as api:  # the API's own limits are apart
            assert api.get("/v1/sources/hook").status_code == 200


def test_zero_turns_a_limit_off_and_bad_limits_stop_the_start(tmp_path: Path) -> None:
    env = {"ONDO_RATE_LIMIT_ANONYMOUS": "0"}
    with RunningPlatform(tmp_path / "data", env=env) as p:
        codes = {httpx.get(f"{p.url}/v1/functions").status_code for _ in range(30)}
        assert codes == {401}
        bad = p.cli("up", "--port", "1", "--rate-limit", "principal=lots")
    assert bad.returncode == 1
    assert "--rate-limit principal: 'lots' must be RATE or RATE:BURST" in bad.stderr
