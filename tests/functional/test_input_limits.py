"""Hostile input on a real `ondo up`: deep or long-numbered JSON on every JSON endpoint, YAML
alias bombs, batches over the cap, and a large batch decoded while /healthz keeps answering."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from ondo.api.app import api_routes
from tests.functional.conftest import EXAMPLES
from tests.functional.platform import RunningPlatform

# Far past Python's recursion limit, yet under the 64 KiB body limit of the smallest endpoints.
DEEP_ARRAYS = b"[" * 30_000 + b"]" * 30_000
DEEP_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
LONG_INT = b'{"n": ' + b"7" * 5_000 + b"}"
HOSTILE = {"deep-arrays": DEEP_ARRAYS, "deep-objects": DEEP_OBJECTS, "5000-digit-int": LONG_INT}
BINARY_MODE = {
    "ce-specversion": "1.0",
    "ce-id": "bin-1",
    "ce-source": "/limits",
    "ce-type": "limits.binary",
    "content-type": "application/json",
}
# (method path, extra headers): every endpoint that reads a JSON request body.
JSON_ENDPOINTS: list[tuple[str, dict[str, str]]] = [
    ("/v1/events", {"content-type": "application/json"}),
    ("/v1/events", {"content-type": "application/cloudevents+json"}),
    ("/v1/events", {"content-type": "application/cloudevents-batch+json"}),
    ("/v1/events", BINARY_MODE),
    ("/v1/events/replay", {}),
    ("/v1/functions/hello/invoke", {}),  # the fast path
    ("/v1/functions/hello/invoke?mode=async", {}),  # through the app
    ("/v1/functions/hello/rollback", {}),
    ("/v1/rules", {}),
    ("/v1/rules/test", {}),
    ("/v1/clock/advance", {}),
    ("/v1/dlq/retry", {}),
    ("/v1/tokens", {}),
    ("/v1/users", {}),
    ("/v1/policies", {}),
    ("/v1/login", {}),
]


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    data = tmp_path_factory.mktemp("limits") / "data"
    env = {"ONDO_CLOCK": "manual"}  # so /v1/clock/advance reads its body too
    with RunningPlatform(data, apps=[EXAMPLES / "hello"], env=env) as running:
        yield running


def error_of(response: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = response.json()["error"]
    return error


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize(("path", "headers"), JSON_ENDPOINTS, ids=lambda v: str(v)[:40])
def test_hostile_json_is_a_400_naming_the_limit(
    hello: RunningPlatform, path: str, headers: dict[str, str], kind: str
) -> None:
    with hello.client() as api:
        answer = api.post(path, content=HOSTILE[kind], headers=headers)
        assert answer.status_code == 400, answer.text
        error = error_of(answer)
        assert error["code"] == "limit_exceeded"
        limit = "integer limit" if kind == "5000-digit-int" else "depth limit"
        assert limit in error["message"]
        assert api.get("/healthz").status_code == 200


PATH_VALUES = {"name": "hello", "id": "1", "event_id": "nope"}


def post_paths() -> list[str]:
    """Every POST route of the API, path parameters filled in (new routes are covered too)."""
    routes = [r for r in api_routes() if isinstance(r, Route) and "POST" in (r.methods or ())]
    return sorted({r.path.format(**PATH_VALUES) for r in routes} - {"/v1/deployments"})


def test_no_post_route_answers_hostile_json_with_a_500(hello: RunningPlatform) -> None:
    paths = post_paths()
    assert "/v1/events" in paths and "/v1/functions/hello/invoke" in paths
    with hello.client() as api:
        for path in paths:
            for kind, body in HOSTILE.items():
                answer = api.post(path, content=body)
                assert 400 <= answer.status_code < 500, (path, kind, answer.text)


def app_archive(manifest: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = manifest.encode()
        info = tarfile.TarInfo("ondo.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)
YAML_CASES = {
    "alias-bomb": (ALIAS_BOMB, "limit_exceeded", "alias expansion limit"),
    "self-alias": ("name: &a [*a]\n", "invalid_config", "self-referencing alias"),
    "deep": ("name: " + "[" * 10_000 + "]" * 10_000 + "\n", "limit_exceeded", "depth limit"),
    "long-int": ("name: " + "9" * 5_000 + "\n", "limit_exceeded", "number limit"),
}


@pytest.mark.parametrize("case", YAML_CASES)
def test_hostile_manifests_are_a_400_and_the_server_keeps_serving(
    hello: RunningPlatform, case: str
) -> None:
    manifest, code, limit = YAML_CASES[case]
    with hello.client() as api:
        answer = api.post(
            "/v1/deployments",
            params={"dry_run": "true"},
            content=app_archive(manifest),
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code == 400, answer.text
        assert error_of(answer)["code"] == code
        assert limit in error_of(answer)["message"]
        assert error_of(answer)["message"].startswith("ondo.yaml:")
        assert api.get("/healthz").status_code == 200


def events(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"specversion": "1.0", "id": f"{prefix}{n}", "source": "/l", "type": "t"}
        for n in range(count)
    ]


def test_a_batch_over_the_cap_is_a_413_naming_it(hello: RunningPlatform) -> None:
    with hello.client() as api:
        over = api.post("/v1/events", json=events(1001, "cap"))
        assert over.status_code == 413, over.text
        message = error_of(over)["message"]
        assert "1001 events" in message and "1000 events per batch" in message
        assert "max_batch_events" in message
        assert api.get("/v1/events/cap0").status_code == 404  # refused whole
        at_cap = api.post("/v1/events", json=events(1000, "cap"))
        assert at_cap.status_code == 202, at_cap.text


def test_healthz_answers_while_a_large_batch_is_decoded(tmp_path: Path) -> None:
    """100,000 events (cap raised): /healthz answers while the server decodes them.

    The last event lacks `type`, so the server's whole work is decoding and validating the
    batch (then a 400 naming event [100000]); /healthz must answer meanwhile, not after.
    """
    batch = [*events(100_000, "b"), {"specversion": "1.0", "source": "/x"}]
    payload = json.dumps(batch, separators=(",", ":")).encode()  # 6.1 MB: under the body limit
    sent_all, batch_done = threading.Event(), threading.Event()
    outcome: dict[str, httpx.Response] = {}

    def chunks() -> Iterator[bytes]:
        yield payload[:-1]
        yield payload[-1:]  # the server starts decoding once this arrives
        sent_all.set()

    env = {"ONDO_MAX_BATCH_EVENTS": "200000"}
    with RunningPlatform(tmp_path / "data", env=env) as platform, platform.client() as api:

        def post_batch() -> None:
            outcome["batch"] = api.post("/v1/events", content=chunks())
            batch_done.set()

        poster = threading.Thread(target=post_batch)
        poster.start()
        assert sent_all.wait(60)
        answered_meanwhile = 0
        with httpx.Client(base_url=platform.url, timeout=120) as probe:
            while not batch_done.is_set() and answered_meanwhile < 5:
                assert probe.get("/healthz").status_code == 200
                answered_meanwhile += 0 if batch_done.is_set() else 1
        poster.join(120)
        assert answered_meanwhile == 5
        assert outcome["batch"].status_code == 400
        assert "event [100000]" in error_of(outcome["batch"])["message"]
