"""Users, tokens, logins, roles and policies on a real `ondo up` (manual clock), through the CLI
and the API: the tokens `ondo users add` and `ondo tokens create` print work, roles limit what
they do, a revoked or expired token is refused on its next call, a login puts `auth.login` on
the bus where a rule reacts to it, and rules belong to who wrote them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ondo.deploy.bundle import pack
from tests.functional.platform import REPO, RunningPlatform, wait_for

GREET = """
def handler(event, context):
    return {"hello": event.get("subject")}
"""
HOUR = 3600.0


def write_app(root: Path, name: str, rules: list[dict[str, Any]], function: str = "greet") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    functions = {function: {"code": "./greet", "handler": "app.handler", "timeout": 10}}
    manifest = {"name": name, "functions": functions, "rules": rules}
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "greet").mkdir(exist_ok=True)
    (root / "greet" / "app.py").write_text(GREET)
    return root


@pytest.fixture(scope="module")
def ondo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    root = tmp_path_factory.mktemp("identity")
    app = write_app(
        root / "app", "welcome", [{"name": "greet-login", "when": "on auth.login do invoke greet"}]
    )
    with RunningPlatform(root / "data", apps=[app], env={"ONDO_CLOCK": "manual"}) as running:
        yield running


def cli(
    ondo: RunningPlatform,
    *args: str,
    token: str | None = None,
    config: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: with `token` in $ONDO_TOKEN (None: the admin's), or none at
    all when `config` is given (the saved login in that XDG config home is used)."""
    env = {k: v for k, v in ondo.env.items() if k != "ONDO_TOKEN"}
    env["ONDO_DATA_DIR"] = str(ondo.data_dir.parent / "not-a-data-dir")  # no admin.token
    if config is not None:
        env["XDG_CONFIG_HOME"] = str(config)
    else:
        env["ONDO_TOKEN"] = token or ondo.token
    return subprocess.run(
        [sys.executable, "-m", "ondo", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        cwd=REPO,
    )


def token_of(result: subprocess.CompletedProcess[str]) -> str:
    """The contract of `users add` and `tokens create`: the token is the last line."""
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ondo_") and " " not in last, result.stdout
    return last


def as_(ondo: RunningPlatform, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=ondo.url, headers=headers, timeout=60)


def add_user(ondo: RunningPlatform, name: str, role: str) -> str:
    return token_of(cli(ondo, "users", "add", name, "--role", role))


def advance(ondo: RunningPlatform, seconds: float) -> None:
    with ondo.client() as admin:
        admin.post("/v1/clock/advance", json={"seconds": seconds}).raise_for_status()


def test_users_add_prints_a_token_that_works_and_users_list_shows_it(
    ondo: RunningPlatform,
) -> None:
    token = add_user(ondo, "dana", "developer")
    me = cli(ondo, "whoami", "--json", token=token)
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["name"] == "dana"
    assert json.loads(me.stdout)["role"] == "developer"
    listed = json.loads(cli(ondo, "users", "list", "--json").stdout)["users"]
    assert {"name": "dana", "role": "developer", "kind": "user"}.items() <= next(
        u for u in listed if u["name"] == "dana"
    ).items()
    again = cli(ondo, "users", "add", "dana")
    assert again.returncode == 1 and "tokens create --for dana" in again.stderr
    service = token_of(cli(ondo, "users", "add", "ci-bot", "--service", "--role", "operator"))
    with as_(ondo, service) as bot:
        assert bot.get("/v1/whoami").json()["kind"] == "service"


def test_roles_limit_what_a_token_may_do(ondo: RunningPlatform, tmp_path: Path) -> None:
    citizen = add_user(ondo, "carla", "citizen")
    operator = add_user(ondo, "otto", "operator")
    archive = pack(write_app(tmp_path / "other", "other", [], "other-fn"))
    with as_(ondo, citizen) as carla, as_(ondo, operator) as otto:
        refused = carla.post("/v1/deployments", content=archive)
        assert refused.status_code == 403, refused.text
        assert "may not deploy" in refused.json()["error"]["message"]
        rule = {"name": "otto-rule", "text": "on x.y do invoke greet"}
        refused = otto.post("/v1/rules", json=rule)
        assert refused.status_code == 403 and "policies add" in refused.text
        assert otto.post("/v1/functions/greet/invoke", json={}).status_code == 200
        assert otto.get("/v1/users").status_code == 403  # managing users is an admin's
        # A citizen may not issue tokens for others, nor see their tokens.
        assert carla.post("/v1/tokens", json={"principal": "otto"}).status_code == 403
        listed = carla.get("/v1/tokens").json()["tokens"]
        assert {t["principal"] for t in listed} == {"carla"}


def test_a_role_changed_in_place_reaches_the_users_live_token(ondo: RunningPlatform) -> None:
    token = add_user(ondo, "rosa", "operator")
    with as_(ondo, token) as rosa:
        rule = {"name": "rosa-rule", "text": "on x.y do invoke greet"}
        assert rosa.post("/v1/rules", json=rule).status_code == 403
        changed = cli(ondo, "users", "set-role", "rosa", "developer")
        assert changed.returncode == 0, changed.stderr
        assert "rosa is now developer" in changed.stdout
        assert rosa.get("/v1/whoami").json()["role"] == "developer"
        assert rosa.post("/v1/rules", json=rule).status_code == 201
        # Only someone with the `users` permission changes roles; an unknown user is named.
        refused = rosa.patch("/v1/users/rosa", json={"role": "admin"})
        assert refused.status_code == 403, refused.text
    missing = cli(ondo, "users", "set-role", "nobody", "citizen")
    assert missing.returncode == 1 and "ondo users list" in missing.stderr
    bad = cli(ondo, "users", "set-role", "rosa", "king")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_a_revoked_token_is_refused_on_its_next_call(ondo: RunningPlatform) -> None:
    first = add_user(ondo, "rita", "developer")
    second = token_of(cli(ondo, "tokens", "create", "--label", "laptop", token=first))
    with as_(ondo, second) as laptop:
        assert laptop.get("/v1/whoami").status_code == 200  # cached by the platform now
        mine = json.loads(cli(ondo, "tokens", "list", "--json", token=first).stdout)["tokens"]
        laptop_id = next(t["id"] for t in mine if t["label"] == "laptop")
        revoked = cli(ondo, "tokens", "revoke", laptop_id, token=first)
        assert revoked.returncode == 0, revoked.stderr
        assert laptop.get("/v1/whoami").status_code == 401
        assert laptop.post("/v1/functions/greet/invoke", json={}).status_code == 401
    refused = cli(ondo, "functions", "list", token=second)
    assert refused.returncode == 1 and "ondo login" in refused.stderr
    # Removing a user revokes every token it had.
    assert cli(ondo, "users", "remove", "rita").returncode == 0
    with as_(ondo, first) as gone:
        assert gone.get("/v1/whoami").status_code == 401


def test_a_token_expires_on_the_platform_clock(ondo: RunningPlatform) -> None:
    own = add_user(ondo, "eve", "developer")
    created = cli(ondo, "tokens", "create", "--expires", "1h", token=own)
    assert "expires never" not in created.stdout
    short = token_of(created)
    with as_(ondo, short) as eve:
        assert eve.get("/v1/whoami").json()["expires_at"] is not None
        advance(ondo, 2 * HOUR)
        assert eve.get("/v1/whoami").status_code == 401
    bad = cli(ondo, "tokens", "create", "--expires", "soon", token=own)
    assert (bad.returncode == 1 and "30d" in bad.stderr) or "90s" in bad.stderr


def test_login_saves_the_token_and_its_auth_login_event_fires_a_rule(
    ondo: RunningPlatform, tmp_path: Path
) -> None:
    token = add_user(ondo, "bob", "citizen")
    config = tmp_path / "config"
    login = cli(ondo, "login", "--token-stdin", config=config, input=token + "\n")
    assert login.returncode == 0, login.stderr
    assert "as bob" in login.stdout
    saved = config / "ondo" / "credentials.json"
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert json.loads(saved.read_text())["logins"][ondo.url]["token"] == token
    whoami = cli(ondo, "whoami", config=config)
    assert whoami.returncode == 0 and whoami.stdout.startswith("bob: role citizen")
    advance(ondo, 0)  # the dispatcher takes the event on the manual clock's tick
    with ondo.client() as admin:
        logins = admin.get("/v1/events", params={"type": "auth.login"}).json()["events"]
        event = next(e["event"] for e in logins if e["event"].get("subject") == "bob")
        assert event["source"] == "ondo" and event["data"]["role"] == "citizen"
        assert token not in json.dumps(event)

        def greeted() -> list[dict[str, Any]]:
            advance(ondo, 0)
            found = admin.get("/v1/functions/greet/invocations").json()["invocations"]
            return [i for i in found if i["status"] == "succeeded"]

        assert wait_for(greeted)
    logout = cli(ondo, "logout", "--revoke", config=config)
    assert logout.returncode == 0 and ondo.url not in json.loads(saved.read_text())["logins"]
    with as_(ondo, token) as revoked:
        assert revoked.get("/v1/whoami").status_code == 401
    after = cli(ondo, "whoami", config=config)
    assert after.returncode == 1 and "ondo login" in after.stderr
    refused = cli(ondo, "login", "--token-stdin", config=config, input="ondo_nope\n")
    assert refused.returncode == 1 and "refused this token" in refused.stderr


def test_policies_widen_a_role_per_resource(ondo: RunningPlatform) -> None:
    operator = add_user(ondo, "olga", "operator")
    citizen = add_user(ondo, "cleo", "citizen")
    rules = cli(
        ondo, "policies", "add", "--to", "olga", "--allow", "rules", "--resource", "rule:olga-*"
    )
    assert rules.returncode == 0, rules.stderr
    policy_id = rules.stdout.strip().splitlines()[-1]
    assert policy_id.startswith("pol_")
    emit = cli(
        ondo, "policies", "add", "--to", "cleo", "--allow", "emit", "--resource", "type:orders.*"
    )
    assert emit.returncode == 0, emit.stderr
    with as_(ondo, operator) as olga, as_(ondo, citizen) as cleo:
        mine = olga.post("/v1/rules", json={"name": "olga-one", "text": "on a.b do invoke greet"})
        assert mine.status_code == 201, mine.text
        assert mine.json()["owner"] == "olga"
        other = olga.post("/v1/rules", json={"name": "other", "text": "on a.b do invoke greet"})
        assert other.status_code == 403 and "rule:other" in other.text
        order = {"specversion": "1.0", "id": "o1", "source": "shop", "type": "orders.new"}
        assert cleo.post("/v1/events", json=order).status_code == 202
        batch = [{**order, "id": "o2"}, {**order, "id": "o3", "type": "payments.new"}]
        refused = cleo.post("/v1/events", json=batch)
        assert refused.status_code == 403 and "type:payments.new" in refused.text
        assert cli(ondo, "policies", "remove", policy_id).returncode == 0
        again = olga.post("/v1/rules", json={"name": "olga-two", "text": "on a.b do invoke greet"})
        assert again.status_code == 403
    listed = json.loads(cli(ondo, "policies", "list", "--json").stdout)["policies"]
    assert [p["principal"] for p in listed] == ["cleo"]


def test_rules_belong_to_who_wrote_them(ondo: RunningPlatform, tmp_path: Path) -> None:
    dev = add_user(ondo, "devi", "developer")
    other = add_user(ondo, "omar", "developer")
    citizen = add_user(ondo, "cyd", "citizen")
    app = write_app(
        tmp_path / "owned",
        "owned",
        [{"name": "owned-rule", "when": "on q.r do invoke owned-fn"}],
        "owned-fn",
    )
    deployed = cli(ondo, "deploy", str(app), token=dev)
    assert deployed.returncode == 0, deployed.stderr
    listed = cli(ondo, "rules", "list", token=dev)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("owned-rule"))
    assert "devi" in row.split() and "OWNER" in listed.stdout.splitlines()[0]
    (app / "ondo.yaml").write_text(
        (app / "ondo.yaml").read_text().replace("on q.r do", "on q.s do")
    )
    refused = cli(ondo, "deploy", str(app), token=other)
    assert refused.returncode == 1 and "belongs to 'devi'" in refused.stderr
    assert "--take-over" in refused.stderr
    taken = cli(ondo, "deploy", str(app), "--take-over", token=other)
    assert taken.returncode == 0, taken.stderr
    with as_(ondo, citizen) as cyd, ondo.client() as admin:
        assert admin.get("/v1/rules/owned-rule").json()["owner"] == "omar"
        own = cyd.post("/v1/rules", json={"name": "cyd-rule", "text": "on s.t do invoke greet"})
        assert own.status_code == 201 and own.json()["owner"] == "cyd"
        assert cyd.post("/v1/rules/owned-rule/disable").status_code == 403
        replaced = cyd.post(
            "/v1/rules",
            params={"replace": "true"},
            json={"name": "owned-rule", "text": "on s.t do invoke greet"},
        )
        assert replaced.status_code == 409 and "belongs to 'omar'" in replaced.text
        assert cyd.delete("/v1/rules/cyd-rule").status_code == 200
