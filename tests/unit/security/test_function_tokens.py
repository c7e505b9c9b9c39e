"""A function's short-lived token: signed with the platform's key, scoped, expiring on the
platform's clock, and checked by the same TokenStore as every other token."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ondo.backends.store import Store, open_store
from ondo.clock import ManualClock
from ondo.security.function_tokens import (
    EXPIRY_MARGIN_S,
    FUNCTION_TOKEN_PREFIX,
    FunctionTokens,
    scope_of,
)
from ondo.security.tokens import TokenStore

SCOPE = scope_of(["reading.*"], ["report"])


def with_store(tmp_path: Path, body: Callable[[Store, ManualClock], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            await body(store, ManualClock(start=1000.0))
        finally:
            await store.close()

    asyncio.run(main())


def test_a_token_names_the_function_with_its_scope_until_it_expires(tmp_path: Path) -> None:
    async def body(store: Store, clock: ManualClock) -> None:
        functions = FunctionTokens(clock.now)
        await functions.load(store.repos.platform_keys)
        tokens = TokenStore(store.repos.tokens, clock.now, functions)
        token = functions.issue("clinic", "check", 3, "inv-1", SCOPE, timeout_s=10)
        assert token.startswith(FUNCTION_TOKEN_PREFIX)
        principal = await tokens.authenticate(token)
        assert principal is not None
        assert (principal.name, principal.namespace, principal.role, principal.kind) == (
            "check",
            "clinic",
            "developer",
            "function",
        )
        assert principal.scope == ("emit:type:reading.*", "invoke:function:report")
        assert principal.expires_at == 1000.0 + 10 + EXPIRY_MARGIN_S
        assert principal.token_id == "fn:inv-1" and not principal.is_admin
        clock.advance(10 + EXPIRY_MARGIN_S - 0.001)
        assert await tokens.authenticate(token) is not None
        clock.advance(0.001)
        assert await tokens.authenticate(token) is None  # expired, on the platform's clock
        assert await store.database.sql.fetch_value("SELECT count(*) FROM tokens") == 0

    with_store(tmp_path, body)


def test_a_changed_or_foreign_token_is_refused(tmp_path: Path) -> None:
    async def body(store: Store, clock: ManualClock) -> None:
        functions = FunctionTokens(clock.now)
        await functions.load(store.repos.platform_keys)
        token = functions.issue("clinic", "check", 1, "inv-1", SCOPE, timeout_s=10)
        body_part, _, signature = token[len(FUNCTION_TOKEN_PREFIX) :].partition(".")
        wider = functions.issue("clinic", "check", 1, "inv-1", scope_of(["*"], ["*"]), 10)
        forged = f"{FUNCTION_TOKEN_PREFIX}{wider.split('.')[1]}.{signature}"
        other = FunctionTokens(clock.now)  # another platform: another key
        other._key = b"k" * 32
        foreign = other.issue("clinic", "check", 1, "inv-1", SCOPE, timeout_s=10)
        for refused in (
            forged,  # a wider scope under the narrower token's signature
            foreign,
            token[:-2],
            f"{FUNCTION_TOKEN_PREFIX}{body_part}",  # no signature at all
            f"{FUNCTION_TOKEN_PREFIX}{body_part}.",
            token + "é",  # not ASCII (a header read as latin-1)
            FUNCTION_TOKEN_PREFIX + "x" * 20_000,
            FUNCTION_TOKEN_PREFIX,
        ):
            assert functions.verify(refused) is None, refused
        assert functions.verify(token) is not None

    with_store(tmp_path, body)


def test_a_token_store_without_the_key_knows_no_function_token(tmp_path: Path) -> None:
    async def body(store: Store, clock: ManualClock) -> None:
        issuer = FunctionTokens(clock.now)
        await issuer.load(store.repos.platform_keys)
        token = issuer.issue("default", "f", 1, "i", SCOPE, timeout_s=1)
        assert await TokenStore(store.repos.tokens, clock.now).authenticate(token) is None
        unloaded = FunctionTokens(clock.now)
        assert not unloaded.ready and unloaded.verify(token) is None

    with_store(tmp_path, body)


def test_every_node_sharing_the_store_signs_with_the_same_key(tmp_path: Path) -> None:
    async def body(store: Store, clock: ManualClock) -> None:
        first, second = FunctionTokens(clock.now), FunctionTokens(clock.now)
        await asyncio.gather(
            first.load(store.repos.platform_keys), second.load(store.repos.platform_keys)
        )
        token = first.issue("default", "f", 1, "i", SCOPE, timeout_s=1)
        assert second.verify(token) is not None

    with_store(tmp_path, body)


@pytest.mark.parametrize(
    ("emit", "invoke", "scope"),
    [
        ([], [], ()),
        (["a.b"], [], ("emit:type:a.b",)),
        ([], ["x-*"], ("invoke:function:x-*",)),
    ],
)
def test_scope_entries_are_what_policy_reads(
    emit: list[str], invoke: list[str], scope: tuple[str, ...]
) -> None:
    assert scope_of(emit, invoke) == scope
