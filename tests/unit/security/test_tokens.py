from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

from ondo.backends.store import Store, open_store
from ondo.security.tokens import Principal, TokenStore


def with_tokens(tmp_path: Path, body: Callable[[TokenStore, Store], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            await body(TokenStore(store.repos.tokens), store)
        finally:
            await store.close()

    asyncio.run(main())


def test_admin_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    async def body(tokens: TokenStore, _store: Store) -> None:
        path = tmp_path / "admin.token"
        token, created = await tokens.ensure_admin_token(path, now=1.0)
        assert created and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert await tokens.ensure_admin_token(path, now=2.0) == (token, False)
        principal = await tokens.authenticate(token)
        assert principal is not None and principal.is_admin

    with_tokens(tmp_path, body)


def test_only_hashes_are_stored_and_unknown_tokens_fail(tmp_path: Path) -> None:
    async def body(tokens: TokenStore, store: Store) -> None:
        token = (await tokens.issue(Principal("alice", "clinic"), now=1.0)).token
        assert await tokens.authenticate(token) == Principal("alice", "clinic")
        assert await tokens.authenticate(token + "x") is None
        stored = [r[0] for r in await store.database.sql.fetch("SELECT hash FROM tokens")]
        assert token not in stored and len(stored) == 1

    with_tokens(tmp_path, body)


def test_a_token_issued_through_another_token_store_is_accepted(tmp_path: Path) -> None:
    """Nothing is cached for a token not seen yet: the store decides."""

    async def body(tokens: TokenStore, store: Store) -> None:
        assert await tokens.authenticate("ondo_later") is None
        other = TokenStore(store.repos.tokens)
        token = (await other.issue(Principal("bob", "lab"), now=1.0)).token
        assert await tokens.authenticate(token) == Principal("bob", "lab")

    with_tokens(tmp_path, body)


def test_a_tampered_token_file_is_replaced(tmp_path: Path) -> None:
    async def body(tokens: TokenStore, _store: Store) -> None:
        path = tmp_path / "admin.token"
        path.write_text("not-a-real-token\n")
        token, created = await tokens.ensure_admin_token(path, now=1.0)
        assert created and path.read_text().strip() == token != "not-a-real-token"

    with_tokens(tmp_path, body)
