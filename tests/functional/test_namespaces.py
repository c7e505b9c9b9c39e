"""Tenant isolation through every endpoint of the served `/openapi.json`, on a real `ondo up`.

Two tenants, `alpha` and `beta`, each a namespace with a user of its own (alpha's is the
namespace's admin: the strongest intruder short of the platform admin). `beta`'s user makes
one resource of each kind through the API (functions, a rule, a source, a contact and a group,
a secret, an event, an invocation record, a dead letter); then every operation the server
documents is called with `alpha`'s token: once naming `beta` (`?namespace=beta`), which must be
404 as if nothing were there, and once addressing `beta`'s resources by name or id in `alpha`'s own
namespace, which must never show, change or reveal them (404, never 403). A route added without
the namespace rule fails here; one whose path names a resource must say which of `beta`'s
(`_path_params`). A citizen's and an operator's token are refused every operation their role
lacks (policy.ROLE_PERMISSIONS): 403, or 404 for the platform-wide ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ondo.api.auth import PUBLIC_PATHS
from ondo.api.permissions import ROUTE_PERMISSIONS
from ondo.backends.store.repositories.tokens import Role
from ondo.deploy.bundle import pack
from ondo.security.policy import ROLE_PERMISSIONS, Permission
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
SECRET_EVENT = "evt-only-in-beta"
SECRET_VALUE = "beta-secret-value"  # beta's secret TENANT_SECRET: no route answers a value
PROBE = {"specversion": "1.0", "id": "alpha-probe", "source": "tests/alpha", "type": "c.x"}
METHODS = ("get", "put", "post", "delete", "patch")
A, B = "alpha", "beta"


@dataclass
class Tenants:
    platform: RunningPlatform
    tokens: dict[str, str]  # user -> token: "alpha", "beta", "citizen", "operator" (in alpha)
    invocation_id: str
    dead_id: int
    archive: bytes  # an app of alpha's, for deployments
    token_ids: dict[str, str] = field(default_factory=dict)  # user -> its first token's id
    policy_id: str = ""  # a policy of beta's
    operations: list[tuple[str, str]] = field(default_factory=list)  # from /openapi.json
    grant_id: str = ""  # a consent grant beta-owner gave

    def client(self, user: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return httpx.Client(base_url=self.platform.url, headers=headers, timeout=60)

    @property
    def markers(self) -> list[str]:
        """Strings only `beta`'s resources contain: none may reach an `alpha` caller."""
        return [
            SECRET_EVENT,
            self.invocation_id,
            "tenant-echo",
            "tenant-broken",
            "run-broken",
            "tenant-feed",
            "tenant-contact",
            "tenant-channel",
            "tenant-group",
            "beta-owner",
            self.tokens[B],
            SECRET_VALUE,
            self.grant_id,
            self.token_ids[B],
            self.policy_id,
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
    rules += "sources:\n  tenant-feed: {kind: ondo}\n"
    rules += "contacts:\n  tenant-contact: {mobile: 'json://127.0.0.1:9/tenant-channel'}\n"
    rules += "groups:\n  tenant-group: [tenant-contact]\n"
    (app / "ondo.yaml").write_text(manifest + rules)
    return app


def _alpha_app(root: Path) -> bytes:
    """The same app name as beta's, deployed by `alpha`: it must not touch beta's copy."""
    app = write_app(
        root,
        {"alpha-echo": {"code": "./echo", "handler": "app.handler", "timeout": 10}},
        {"echo/app.py": ECHO},
    )
    return pack(app)


def _add_user(admin: httpx.Client, name: str, namespace: str, role: str) -> tuple[str, str]:
    """A user added by the platform admin: (its first token, the token's id)."""
    body = {"name": name, "namespace": namespace, "role": role}
    added = admin.post("/v1/users", json=body)
    assert added.status_code == 201, added.text
    return added.json()["token"], added.json()["id"]


def _beta_makes_one_of_each(platform: RunningPlatform, beta: httpx.Client, app: Path) -> Any:
    deployed = beta.post("/v1/deployments", content=pack(app))
    assert deployed.status_code == 200, deployed.text
    event = {"specversion": "1.0", "id": SECRET_EVENT, "source": "tests/ns", "type": "test.go"}
    assert beta.post("/v1/events", json=event).status_code == 202  # run-broken: a dead letter
    invoked = beta.post("/v1/functions/tenant-echo/invoke", json={"x": 1})
    assert invoked.status_code == 200, invoked.text
    dead = wait_for(lambda: beta.get("/v1/dlq").json()["dead_letters"])
    assert beta.put("/v1/secrets/TENANT_SECRET", content=SECRET_VALUE).status_code == 201
    return invoked.headers["X-Ondo-Invocation-Id"], dead[0]["id"]


def _beta_grants(beta: httpx.Client) -> str:
    """A consent grant of beta-owner's (the data subject gives it with its own token)."""
    given = beta.post("/v1/grants", json={"to": "beta-gp", "types": ["health.*"]})
    assert given.status_code == 201, given.text
    grant_id: str = given.json()["id"]
    return grant_id


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    root = tmp_path_factory.mktemp("namespaces")
    app = _tenant_app(root / "tenant")
    platform = RunningPlatform(root / "data", env={"ONDO_ACTION_MAX_ATTEMPTS": "1"})
    with platform, platform.client() as admin:
        users = {
            A: ("alpha-dev", A, "admin"),  # its namespace's admin: the strongest intruder
            B: ("beta-owner", B, "developer"),
            "citizen": ("alpha-citizen", A, "citizen"),
            "operator": ("alpha-operator", A, "operator"),
        }
        added = {user: _add_user(admin, *spec) for user, spec in users.items()}
        tokens = {user: token for user, (token, _) in added.items()}
        t = Tenants(platform, tokens, "", 0, _alpha_app(root / "alpha" / "tenant"))
        t.token_ids = {user: token_id for user, (_, token_id) in added.items()}
        policy = {"principal": "beta-owner", "permission": "users", "namespace": B}
        t.policy_id = admin.post("/v1/policies", json=policy).json()["id"]
        with t.client(B) as beta:
            t.invocation_id, t.dead_id = _beta_makes_one_of_each(platform, beta, app)
            t.grant_id = _beta_grants(beta)
        t.operations = _operations(platform)
        yield t


def _operations(platform: RunningPlatform) -> list[tuple[str, str]]:
    """Every (METHOD, path template) of the served OpenAPI document but the public paths."""
    doc = httpx.get(f"{platform.url}/openapi.json", timeout=30).json()
    found = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        if path not in PUBLIC_PATHS
        for method in item
        if method in METHODS
    ]
    assert len(found) > 25  # the document was read, not an empty one
    assert set(found) == set(ROUTE_PERMISSIONS)  # and it documents every guarded route
    return sorted(found)


def _path_params(path: str, t: Tenants) -> dict[str, str]:
    """Ids and names of resources that exist in `beta` only."""
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
        "/v1/secrets/": {"name": "TENANT_SECRET"},
        "/v1/grants/": {"id": t.grant_id},
        "/v1/users/": {"name": "beta-owner"},
        "/v1/tokens/": {"id": t.token_ids[B]},
        "/v1/policies/": {"id": t.policy_id},
    }
    names = re.findall(r"\{(\w+)\}", path)
    for prefix, values in by_prefix.items():
        if path.startswith(prefix):
            assert set(names) <= set(values), f"add {path} here"
            return {name: values[name] for name in names}
    assert not names, f"{path}: say which `beta` resource it names"
    return {}


def _request(t: Tenants, method: str, path: str) -> dict[str, Any]:
    """A well-formed request for the operation (by its path template), so only the namespace
    or the role can refuse it."""
    bodies: dict[str, Any] = {
        "/v1/tokens": {"json": {"principal": "intruder", "namespace": B}},
        "/v1/grants": {"json": {"to": "intruder", "types": ["health.*"]}},
        "/v1/users": {"json": {"name": "intruder", "role": "citizen"}},
        "/v1/users/{name}": {"json": {"role": "citizen"}},
        "/v1/policies": {"json": {"principal": "beta-owner", "permission": "invoke"}},
        "/v1/functions/{name}/rollback": {"json": {"version": 1}},
        "/v1/functions/{name}/invoke": {"json": {"x": 2}},
        "/v1/events": {"json": PROBE},
        "/v1/events/replay": {"json": {"since": "1d"}},
        "/v1/deployments": {"content": t.archive, "params": {"dry_run": "true"}},
        "/v1/dlq/retry": {"json": {"ids": [t.dead_id]}},
        "/v1/rules": {"json": {"name": "alpha-rule", "text": "on c.x do emit c.y"}},
        "/v1/rules/test": {"json": {"event": {**PROBE, "type": "test.go"}}},
        "/v1/clock/advance": {"json": {"seconds": 1}},
    }
    return dict(bodies.get(path, {})) if method in ("POST", "PUT", "PATCH") else {}


def _call(client: httpx.Client, method: str, path: str, t: Tenants, **extra: Any) -> Any:
    request = _request(t, method, path)
    params = {**request.pop("params", {}), **extra}
    return client.request(method, path.format(**_path_params(path, t)), params=params, **request)


def test_every_operation_answers_404_to_a_token_naming_another_namespace(t: Tenants) -> None:
    with t.client(A) as alpha:
        for method, path in t.operations:
            response = _call(alpha, method, path, t, namespace=B)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
            assert not [m for m in t.markers if m in response.text], (method, path)
    _beta_is_untouched(t)


def test_no_operation_shows_changes_or_reveals_beta_to_an_alpha_token(t: Tenants) -> None:
    with t.client(A) as alpha:
        for method, path in t.operations:
            response = _call(alpha, method, path, t)
            where = (method, path, response.status_code, response.text[:300])
            assert response.status_code < 500 and response.status_code != 403, where
            # Addressed by name or id, beta's resource does not exist here (a PUT would make
            # alpha's own under that name: its body is left out, so it is refused with 400).
            if _path_params(path, t) and method != "PUT":
                assert response.status_code == 404, where
            if path == AUDIT:
                _own_trail(response, where)
            elif response.status_code != 404:
                assert not [m for m in t.markers if m in response.text], where
                assert _namespaces_in(response.json()) <= {A}, where
    _beta_is_untouched(t)


AUDIT = "/v1/audit"
# alpha's users, and the platform admin, who added them in alpha (POST /v1/users?namespace=…).
ALPHAS = {"alpha-dev", "alpha-citizen", "alpha-operator", "admin"}


def _own_trail(response: httpx.Response, where: object) -> None:
    """alpha's audit trail names what alpha's own calls asked for (beta's names among them):
    it may show them, but only entries of alpha's namespace, made by alpha's users (or the
    platform admin acting there)."""
    assert response.status_code == 200, where
    assert {e["principal"] for e in response.json()["entries"]} <= ALPHAS, where
    assert _namespaces_in(response.json()) <= {A}, where


def test_every_list_shows_alpha_nothing_of_betas(t: Tenants) -> None:
    lists = [path for method, path in t.operations if method == "GET" and "{" not in path]
    assert {"/v1/functions", "/v1/rules", "/v1/events", "/v1/dlq", "/v1/sources"} <= set(lists)
    with t.client(A) as alpha:
        for path in lists:
            for params in ({}, {"namespace": A}):
                response = alpha.get(path, params=params)
                where = (path, params, response.status_code, response.text[:300])
                if ROUTE_PERMISSIONS[("GET", path)] is Permission.PLATFORM:
                    assert response.status_code == 404, where
                    continue
                assert response.status_code == 200, where
                if path == AUDIT:
                    _own_trail(response, where)
                    continue
                assert not [m for m in t.markers if m in response.text], where
                assert _namespaces_in(response.json()) <= {A}, where


@pytest.mark.parametrize("role", ["citizen", "operator"])
def test_a_role_is_refused_every_operation_it_lacks(t: Tenants, role: Role) -> None:
    allowed = ROLE_PERMISSIONS[role]
    refused = 0
    with t.client(role) as client:
        for method, path in t.operations:
            permission = ROUTE_PERMISSIONS[(method, path)]
            response = _call(client, method, path, t)
            where = (role, method, path, response.status_code, response.text[:300])
            assert response.status_code < 500, where
            if permission in allowed:
                continue
            refused += 1
            expected = 404 if permission is Permission.PLATFORM else 403
            assert response.status_code == expected, where
    assert refused > 5  # the role does lack something
    _beta_is_untouched(t)


def test_an_alpha_token_acts_in_alpha_and_the_admin_may_look_there(t: Tenants) -> None:
    event = {"specversion": "1.0", "id": "alpha-own", "source": "c", "type": "alpha.seen"}
    with t.client(A) as alpha, t.platform.client() as admin:
        assert alpha.post("/v1/events", json=event).status_code == 202
        own = alpha.get("/v1/events", params={"namespace": A, "type": "alpha.*"})
        assert [e["event"]["id"] for e in own.json()["events"]] == ["alpha-own"]
        looked = admin.get("/v1/events/alpha-own", params={"namespace": A})
        assert looked.status_code == 200 and looked.json()["namespace"] == A
        assert admin.get("/v1/events/alpha-own").status_code == 404  # not in default
        mixed = alpha.get("/v1/events", params=[("namespace", A), ("namespace", "x")])
        assert mixed.status_code == 400
        bad = admin.get("/v1/functions", params={"namespace": "Not A Name"})
        assert bad.status_code == 400 and "namespace" in bad.json()["error"]["message"]


def test_tokens_for_unknown_principals_are_the_platform_admins_and_never_as_admin(
    t: Tenants,
) -> None:
    with t.client(A) as alpha, t.platform.client() as admin:
        body = {"principal": "doctor", "namespace": A}
        unknown = alpha.post("/v1/tokens", json=body)  # alpha has no user doctor
        assert unknown.status_code == 404 and "ondo users add doctor" in unknown.text
        first, second = (admin.post("/v1/tokens", json=body).json()["token"] for _ in range(2))
        assert first != second and len(first) >= 43  # 256 random bits, url-safe base64
        in_default = admin.post("/v1/tokens", json={"principal": "doctor"}).json()
        assert in_default["namespace"] == "default"  # the admin's own, unless it names one
        for refused in (
            {"principal": "admin", "namespace": A},
            {"principal": "doctor", "namespace": "Bad Name"},
            {"principal": "doctor", "namespace": A, "admin": True},
        ):
            answer = admin.post("/v1/tokens", json=refused)
            assert answer.status_code == 400, (refused, answer.text)


def _beta_is_untouched(t: Tenants) -> None:
    with t.client(B) as beta:
        functions = beta.get("/v1/functions").json()["functions"]
        assert sorted(f["name"] for f in functions) == ["tenant-broken", "tenant-echo"]
        assert [r["name"] for r in beta.get("/v1/rules").json()["rules"]] == ["run-broken"]
        assert beta.get(f"/v1/dlq/{t.dead_id}").json()["status"] == "dead"
        assert beta.get(f"/v1/invocations/{t.invocation_id}").status_code == 200
        assert beta.get(f"/v1/events/{SECRET_EVENT}").status_code == 200
        contacts = beta.get("/v1/contacts").text
        assert "tenant-contact" in contacts and "tenant-group" in contacts
        assert [s["name"] for s in beta.get("/v1/sources").json()["sources"]] == ["tenant-feed"]
        [secret] = beta.get("/v1/secrets").json()["secrets"]
        assert secret["name"] == "TENANT_SECRET"
        assert secret["updated_at"] == secret["created_at"]  # not set again by an alpha call
        grants = beta.get("/v1/grants").json()["grants"]
        assert [(g["id"], g["revoked_at"]) for g in grants] == [(t.grant_id, None)]


def _namespaces_in(doc: Any) -> set[str]:
    """Every value of a "namespace" key anywhere in a JSON document."""
    if isinstance(doc, list):
        return set().union(*(_namespaces_in(item) for item in doc))
    if not isinstance(doc, dict):
        return set()
    found = {doc["namespace"]} if isinstance(doc.get("namespace"), str) else set()
    return found.union(*(_namespaces_in(value) for value in doc.values()))


@pytest.fixture
def t(tenants: Tenants) -> Tenants:
    return tenants
