"""Revocation, expiry and policies reach every TokenStore on a shared store on the next call:
two TokenStores of one store (one process), and on PostgreSQL two stores (two processes)."""

from __future__ import annotations

import asyncio

import pytest

from ondo.backends.store.repositories.policies import Policy
from ondo.backends.store.repositories.tokens import Principal, User
from ondo.security.tokens import TokenStore
from tests.unit.store.conftest import StoreFactory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_revoked_expired_and_granted_reach_another_token_store(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        clock = Clock()
        one = TokenStore(store.repos.tokens, clock, policies=store.repos.policies)
        two = TokenStore(store.repos.tokens, clock, policies=store.repos.policies)
        for tokens in (one, two):
            tokens.watch(store.subscribe)
        try:
            await store.repos.tokens.put_user(User("shop", "bob", "citizen", "user", 1.0, "a"))
            bob = Principal("bob", "shop", "citizen")
            issued = await one.issue(bob, clock.now, expires_at=clock.now + 60)
            seen = await two.authenticate(issued.token)
            assert seen is not None and seen.policies == ()
            policy = Policy("pol_1", "shop", "bob", "invoke", "function:r*", 1.0, "a")
            await store.repos.policies.add(policy)
            granted = await two.authenticate(issued.token)
            assert granted is not None and granted.policies == (("invoke", "function:r*"),)
            clock.now += 61
            assert await two.authenticate(issued.token) is None  # expired, though cached
            clock.now -= 61
            await store.repos.tokens.revoke("shop", issued.id, clock.now)
            assert await two.authenticate(issued.token) is None
            assert await one.authenticate(issued.token) is None
        finally:
            one.close()
            two.close()
            await store.close()

    asyncio.run(main())


def test_a_revocation_reaches_another_process(
    make_store: StoreFactory, store_url: tuple[str, str]
) -> None:
    if store_url[0].startswith("sqlite"):
        pytest.skip("one process per SQLite data dir: the change feed stays in the process")

    async def main() -> None:
        mine, theirs = await make_store(), await make_store()
        here = TokenStore(mine.repos.tokens, policies=mine.repos.policies)
        there = TokenStore(theirs.repos.tokens, policies=theirs.repos.policies)
        there.watch(theirs.subscribe)
        try:
            issued = await here.issue(Principal("bob", "shop"), 1.0)
            assert await there.authenticate(issued.token) is not None  # cached there now
            await mine.repos.tokens.revoke("shop", issued.id, 2.0)

            # The notice crosses PostgreSQL's LISTEN/NOTIFY: a bound on waiting, not a timing.
            for _ in range(600):
                if await there.authenticate(issued.token) is None:
                    break
                await asyncio.sleep(0.05)
            assert await there.authenticate(issued.token) is None
        finally:
            there.close()
            await mine.close()
            await theirs.close()

    asyncio.run(main())
