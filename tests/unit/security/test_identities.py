"""Managing principals (security/identities.py) on a real SQLite store: who may add users,
issue, list and revoke tokens, and grant policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ondo.backends.store import open_store
from ondo.backends.store.repositories.tokens import Principal
from ondo.errors import Conflict, Forbidden, NotFound, ValidationError
from ondo.security.identities import Identities, TokenRequest
from ondo.security.tokens import TokenStore

BOSS = Principal("boss", "shop", "admin")


def with_identities(tmp_path: Path, body: Callable[[Identities], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        tokens = TokenStore(store.repos.tokens, lambda: 1000.0, policies=store.repos.policies)
        tokens.watch(store.subscribe)
        try:
            await body(Identities(store.repos.tokens, store.repos.policies, tokens, lambda: 1000.0))
        finally:
            tokens.close()
            await store.close()

    asyncio.run(main())


def test_an_admin_adds_users_whose_first_token_names_them(tmp_path: Path) -> None:
    async def body(ids: Identities) -> None:
        user, issued = await ids.add_user(BOSS, "shop", "bob", "citizen", "user")
        assert (user.name, user.role, user.created_by) == ("bob", "citizen", "boss")
        bob = await ids.store.authenticate(issued.token)
        assert bob is not None and (bob.name, bob.namespace, bob.role) == ("bob", "shop", "citizen")
        with pytest.raises(Conflict, match="tokens create --for bob"):
            await ids.add_user(BOSS, "shop", "bob", "developer", "user")
        with pytest.raises(Forbidden):
            await ids.add_user(bob, "shop", "eve", "admin", "user")  # a citizen manages no one
        with pytest.raises(ValidationError, match="one of: admin"):
            await ids.add_user(BOSS, "shop", "eve", "root", "user")

    with_identities(tmp_path, body)


def test_tokens_for_oneself_and_others_and_who_may_revoke_them(tmp_path: Path) -> None:
    async def body(ids: Identities) -> None:
        await ids.add_user(BOSS, "shop", "bob", "citizen", "user")
        await ids.add_user(BOSS, "shop", "ann", "developer", "user")
        bob = Principal("bob", "shop", "citizen")
        ann = Principal("ann", "shop", "developer")
        own = await ids.issue(bob, "shop", TokenRequest(label="phone", expires_in_s=60))
        assert own.principal.name == "bob" and own.principal.expires_at == 1060.0
        with pytest.raises(Forbidden):
            await ids.issue(bob, "shop", TokenRequest(principal="ann"))
        with pytest.raises(NotFound, match="ondo users add carl"):
            await ids.issue(BOSS, "shop", TokenRequest(principal="carl"))
        for_ann = await ids.issue(BOSS, "shop", TokenRequest(principal="ann"))
        assert for_ann.principal.role == "developer"
        assert {t.principal for t in await ids.token_list(bob, "shop")} == {"bob"}
        assert {t.principal for t in await ids.token_list(BOSS, "shop")} == {"bob", "ann"}
        with pytest.raises(Forbidden):
            await ids.revoke(ann, "shop", own.id)  # bob's, and ann manages no one
        with pytest.raises(NotFound):
            await ids.revoke(bob, "lab", own.id)  # not in that namespace
        assert (await ids.revoke(bob, "shop", own.id)).revoked_at == 1000.0
        platform_admin = await ids.store.issue(Principal("admin", "shop", "admin"), 1.0)
        with pytest.raises(Forbidden, match="platform admin's"):
            await ids.revoke(BOSS, "shop", platform_admin.id)
        assert await ids.store.authenticate(own.token) is None
        scoped = Principal("fn", "shop", "developer", kind="function", scope=("emit",))
        with pytest.raises(ValidationError, match="scoped token"):
            await ids.issue(scoped, "shop", TokenRequest())

    with_identities(tmp_path, body)


def test_policies_reach_the_principal_on_its_next_call(tmp_path: Path) -> None:
    async def body(ids: Identities) -> None:
        _, issued = await ids.add_user(BOSS, "shop", "otto", "operator", "user")
        policy = await ids.add_policy(BOSS, "shop", "otto", "rules", "rule:otto-*")
        otto = await ids.store.authenticate(issued.token)
        assert otto is not None and otto.policies == (("rules", "rule:otto-*"),)
        for bad in (("platform", "*"), ("rules", "otto-*"), ("rules", "rule: x")):
            with pytest.raises(ValidationError):
                await ids.add_policy(BOSS, "shop", "otto", *bad)
        with pytest.raises(NotFound, match="ondo users add nobody"):
            await ids.add_policy(BOSS, "shop", "nobody", "invoke", "*")
        await ids.remove_policy(BOSS, "shop", policy.id)
        otto = await ids.store.authenticate(issued.token)
        assert otto is not None and otto.policies == ()
        await ids.add_policy(BOSS, "shop", "otto", "invoke", "")
        assert await ids.remove_user(BOSS, "shop", "otto") == 1
        assert await ids.store.authenticate(issued.token) is None
        assert await ids.policy_list(BOSS, "shop") == []

    with_identities(tmp_path, body)
