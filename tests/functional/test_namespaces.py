"""Namespaces on a real `ondo up`: a token of `clinic` sees and touches nothing of `default`.

Every route of the app is taken from the Starlette router, so a route added without the
namespace rule fails here: each one is called with a `clinic` token, once naming `default`
(`?namespace=default`) and once addressing a resource that exists only in `default`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from ondo.api.app import api_routes
from ondo.api.auth import PUBLIC_PATHS
from ondo.deploy.bundle import pack
from tests.functional.apps import write_app
from tests.functional.platform import RunningPlatform, wait_for

BROKEN = """
def handler(event, context):
    raise RuntimeError("broken on purpose")
"""
ECHO = """
def handler(event, context):
    return {"echo": event}
"""
SECRET_EVENT = "evt-only-in-default"
PROBE = {"specversion": "1.0", "id": "clinic-probe", "source": "tests/clinic", "type": "c.x"}


@dataclass
class Tenants:
    platform: RunningPlatform
    clinic_token: str
    invocation_id: str
    dead_id: int
    archive: bytes

    def clinic(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.clinic_token}"}
        return httpx.Client(base_url=self.platform.url, headers=headers, timeout=60)

    @property
    def markers(self) -> list[str]:
        """Strings only `default`'s resources contain: none may reach a `clinic` caller."""
        return [
            SECRET_EVENT,
            self.invocation_id,
            "tenant-echo",
            "tenant-broken",
            "run-broken",
            "tenant-feed",
            "tenant-channel",
        ]


def _tenant_app(root: Path) -> Path:
    app = write_app(
        root,
        {
            "tenant-echo": {"code": "./echo", "handler": "app.handler", "timeout": 10},
            "tenant-broken": {"code": "./broken", "handler": "app.handler", "timeout": 10},
        },
        {"echo/app.py": ECHO, "broken/app.py": BROKEN},
    )
    manifest = (app / "ondo.yaml").read_text()
    rules = "rules:\n  - name: run-broken\n    when: 'on test.go do invoke tenant-broken'\n"
    # A source, a contact and a group of default's, for the routes that name them.
    rules += "sources:\n  tenant-feed: {kind: ondo}\n"
    rules += "contacts:\n  tenant-contact: {mobile: 'json://127.0.0.1:9/tenant-channel'}\n"
    rules += "groups:\n  tenant-group: [tenant-contact]\n"
    (app / "ondo.yaml").write_text(manifest + rules)
    return app


def _clinic_app(root: Path) -> bytes:
    """The same app name as default's, deployed by `clinic`: it must not touch default's copy."""
    app = write_app(
        root,
        {"clinic-echo": {"code": "./echo", "handler": "app.handler", "timeout": 10}},
        {"echo/app.py": ECHO},
    )
    return pack(app)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    root = tmp_path_factory.mktemp("namespaces")
    app = _tenant_app(root / "tenant")
    env = {"ONDO_ACTION_MAX_ATTEMPTS": "1"}
    platform = RunningPlatform(root / "data", apps=[app], env=env)
    with platform, platform.client() as admin:
        event = {"specversion": "1.0", "id": SECRET_EVENT, "source": "tests/ns", "type": "test.go"}
        admin.post("/v1/events", json=event).raise_for_status()
        invoked = admin.post("/v1/functions/tenant-echo/invoke", json={"x": 1})
        invoked.raise_for_status()
        dead = wait_for(lambda: admin.get("/v1/dlq").json()["dead_letters"])
        issued = admin.post("/v1/tokens", json={"principal": "nurse", "namespace": "clinic"})
        assert issued.status_code == 201, issued.text
        yield Tenants(
            platform,
            issued.json()["token"],
            invoked.headers["X-Ondo-Invocation-Id"],
            dead[0]["id"],
            _clinic_app(root / "clinic" / "tenant"),
        )


def _operations() -> list[tuple[str, Route]]:
    found = [
        (method, route)
        for route in api_routes()
        if isinstance(route, Route) and route.path not in PUBLIC_PATHS
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]
    assert len(found) > 25  # the router was read, not an empty list
    return found


def _path_params(route: Route, t: Tenants) -> dict[str, str]:
    """Ids and names of resources that exist in `default` only."""
    by_prefix = {
        "/v1/functions/": {"name": "tenant-echo"},
        "/v1/rules/": {"name": "run-broken"},
        "/v1/invocations/": {"id": t.invocation_id},
        "/v1/events/": {"id": SECRET_EVENT},
        "/v1/trace/": {"event_id": SECRET_EVENT},
        "/v1/dlq/": {"id": str(t.dead_id)},
        "/v1/sources/": {"name": "tenant-feed"},
        "/v1/contacts/": {"name": "tenant-contact"},
        "/v1/groups/": {"name": "tenant-group"},
    }
    for prefix, values in by_prefix.items():
        if route.path.startswith(prefix):
            assert set(route.param_convertors) <= set(values), f"add {route.path} here"
            return {name: values[name] for name in route.param_convertors}
    assert not route.param_convertors, f"{route.path}: say which `default` resource it names"
    return {}


def _request(t: Tenants, method: str, path: str) -> dict[str, Any]:
    """A well-formed request for the operation, so only the namespace can refuse it."""
    bodies: dict[str, Any] = {
        "/v1/tokens": {"json": {"principal": "intruder", "namespace": "default"}},
        "/v1/functions/tenant-echo/rollback": {"json": {"version": 1}},
        "/v1/functions/tenant-echo/invoke": {"json": {"x": 2}},
        "/v1/events": {"json": PROBE},
        "/v1/events/replay": {"json": {"since": "1d"}},
        "/v1/deployments": {"content": t.archive, "params": {"dry_run": "true"}},
        "/v1/dlq/retry": {"json": {"ids": [t.dead_id]}},
        "/v1/rules": {"json": {"name": "clinic-rule", "text": "on c.x do emit c.y"}},
        "/v1/rules/test": {"json": {"event": {**PROBE, "type": "test.go"}}},
        "/v1/clock/advance": {"json": {"seconds": 1}},
    }
    return bodies.get(path, {}) if method == "POST" else {}


def _call(client: httpx.Client, method: str, route: Route, t: Tenants, **extra: Any) -> Any:
    path = route.path.format(**_path_params(route, t))
    request = _request(t, method, path)
    params = {**request.pop("params", {}), **extra}
    return client.request(method, path, params=params, **request)


def test_every_route_answers_404_to_a_token_naming_another_namespace(tenants: Tenants) -> None:
    with tenants.clinic() as clinic:
        for method, route in _operations():
            response = _call(clinic, method, route, tenants, namespace="default")
            assert response.status_code == 404, (method, route.path, response.text)
            assert response.json()["error"]["code"] == "not_found"
    _default_is_untouched(tenants)


def test_no_route_shows_or_changes_default_to_a_clinic_token(tenants: Tenants) -> None:
    with tenants.clinic() as clinic:
        for method, route in _operations():
            response = _call(clinic, method, route, tenants)
            where = (method, route.path, response.status_code, response.text[:300])
            assert response.status_code < 500, where
            if response.status_code != 404:
                assert not [m for m in tenants.markers if m in response.text], where
                assert _namespaces_in(response.json()) <= {"clinic"}, where
    _default_is_untouched(tenants)


def test_a_clinic_token_acts_in_clinic_and_the_admin_may_look_there(tenants: Tenants) -> None:
    event = {"specversion": "1.0", "id": "clinic-own", "source": "c", "type": "clinic.seen"}
    with tenants.clinic() as clinic, tenants.platform.client() as admin:
        assert clinic.post("/v1/events", json=event).status_code == 202
        own = clinic.get("/v1/events", params={"namespace": "clinic", "type": "clinic.*"})
        assert [e["event"]["id"] for e in own.json()["events"]] == ["clinic-own"]
        looked = admin.get("/v1/events/clinic-own", params={"namespace": "clinic"})
        assert looked.status_code == 200 and looked.json()["namespace"] == "clinic"
        assert admin.get("/v1/events/clinic-own").status_code == 404  # not in default
        mixed = clinic.get("/v1/events", params=[("namespace", "clinic"), ("namespace", "x")])
        assert mixed.status_code == 400
        bad = admin.get("/v1/functions", params={"namespace": "Not A Name"})
        assert bad.status_code == 400 and "namespace" in bad.json()["error"]["message"]


def test_tokens_are_issued_by_the_admin_only_and_never_as_admin(tenants: Tenants) -> None:
    with tenants.clinic() as clinic, tenants.platform.client() as admin:
        body = {"principal": "doctor", "namespace": "clinic"}
        assert clinic.post("/v1/tokens", json=body).status_code == 404
        first, second = (admin.post("/v1/tokens", json=body).json()["token"] for _ in range(2))
        assert first != second and len(first) >= 43  # 256 random bits, url-safe base64
        for refused in (
            {"principal": "admin", "namespace": "clinic"},
            {"principal": "doctor", "namespace": "Bad Name"},
            {"principal": "doctor"},
            {"principal": "doctor", "namespace": "clinic", "admin": True},
        ):
            answer = admin.post("/v1/tokens", json=refused)
            assert answer.status_code == 400, (refused, answer.text)


def _default_is_untouched(t: Tenants) -> None:
    with t.platform.client() as admin:
        functions = admin.get("/v1/functions").json()["functions"]
        assert sorted(f["name"] for f in functions) == ["tenant-broken", "tenant-echo"]
        assert [r["name"] for r in admin.get("/v1/rules").json()["rules"]] == ["run-broken"]
        assert admin.get(f"/v1/dlq/{t.dead_id}").json()["status"] == "dead"
        assert admin.get(f"/v1/invocations/{t.invocation_id}").status_code == 200
        assert admin.get(f"/v1/events/{SECRET_EVENT}").status_code == 200


def _namespaces_in(doc: Any) -> set[str]:
    """Every value of a "namespace" key anywhere in a JSON document."""
    if isinstance(doc, list):
        return set().union(*(_namespaces_in(item) for item in doc))
    if not isinstance(doc, dict):
        return set()
    found = {doc["namespace"]} if isinstance(doc.get("namespace"), str) else set()
    return found.union(*(_namespaces_in(value) for value in doc.values()))
