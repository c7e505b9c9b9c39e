"""The token repository's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from ondo.backends.store.repositories.tokens import NewToken, Principal, User
from ondo.errors import DuplicateKey
from tests.unit.store.conftest import StoreFactory


def test_a_token_names_its_principal_by_digest(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            tokens = store.repos.tokens
            assert await tokens.principal("d1") is None
            await tokens.add(NewToken("d1", "tok_1", Principal("alice", "clinic"), 1.0))
            await tokens.add(NewToken("d2", "tok_2", Principal("admin"), 2.0))
            assert await tokens.principal("d1") == (Principal("alice", "clinic"), None)
            found = await tokens.principal("d2")
            assert found is not None and found[0].is_admin and found[0].role == "admin"
            with pytest.raises(DuplicateKey):
                await tokens.add(NewToken("d1", "tok_3", Principal("bob"), 3.0))
        finally:
            await store.close()

    asyncio.run(main())


def test_a_users_role_reaches_its_tokens_and_revoking_ends_them(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            tokens = store.repos.tokens
            await tokens.put_user(User("clinic", "bob", "citizen", "user", 1.0, "admin"))
            await tokens.add(NewToken("d1", "tok_1", Principal("bob", "clinic"), 2.0, "laptop"))
            await tokens.add(NewToken("d2", "tok_2", Principal("bob", "clinic"), 3.0))
            found = await tokens.principal("d1")
            assert found is not None and found[0].role == "citizen" and found[1] is None
            await tokens.put_user(User("clinic", "bob", "operator", "user", 1.0, "admin"))
            found = await tokens.principal("d1")
            assert found is not None and found[0].role == "operator"
            assert await tokens.revoke("lab", "tok_1", 4.0) is None  # another namespace's
            revoked = await tokens.revoke("clinic", "tok_1", 4.0)
            assert revoked is not None and revoked.revoked_at == 4.0
            assert [t.id for t in await tokens.listing("clinic", "bob")] == ["tok_1", "tok_2"]
            assert await tokens.revoke_principal("clinic", "bob", 5.0) == 1
            assert all(t.revoked_at for t in await tokens.listing(None, None))
            assert await tokens.delete_user("clinic", "bob")
            assert await tokens.user("clinic", "bob") is None
        finally:
            await store.close()

    asyncio.run(main())
