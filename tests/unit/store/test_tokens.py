"""The token repository's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from ondo.backends.store.repositories.tokens import Principal
from ondo.errors import DuplicateKey
from tests.unit.store.conftest import StoreFactory


def test_a_token_names_its_principal_by_digest(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            tokens = store.repos.tokens
            assert await tokens.principal("d1") is None
            await tokens.add("d1", Principal("alice", "clinic"), now=1.0)
            await tokens.add("d2", Principal("admin"), now=2.0)
            assert await tokens.principal("d1") == Principal("alice", "clinic")
            found = await tokens.principal("d2")
            assert found is not None and found.is_admin
            with pytest.raises(DuplicateKey):
                await tokens.add("d1", Principal("bob"), now=3.0)
        finally:
            await store.close()

    asyncio.run(main())
