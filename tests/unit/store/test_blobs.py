"""The blob repository's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os

from ondo.backends.store.repositories.blobs import PART_BYTES
from ondo.backends.store.sql.blobs import SqlBlobRepository
from tests.unit.store.conftest import StoreFactory


def test_a_blob_comes_back_whole_from_its_parts(make_store: StoreFactory) -> None:
    data = os.urandom(2 * PART_BYTES + 12345)  # three parts, the last one short

    async def main() -> None:
        store = await make_store()
        try:
            blobs = store.repos.blobs
            assert await blobs.get("code", "h1") is None
            assert not await blobs.exists("code", "h1")
            async with store.transaction() as uow:
                await uow.blobs.put("code", "h1", data)
            assert await blobs.exists("code", "h1")
            assert await blobs.get("code", "h1") == data
            assert not await blobs.exists("layer", "h1")  # the kind is part of the name
            assert await blobs.get("layer", "h1") is None
        finally:
            await store.close()

    asyncio.run(main())


def test_putting_a_blob_again_is_a_no_op(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        try:
            async with store.transaction() as uow:
                await uow.blobs.put("layer", "h2", b"first")
            async with store.transaction() as uow:  # same name: content-addressed, unchanged
                await uow.blobs.put("layer", "h2", b"first")
            assert await store.repos.blobs.get("layer", "h2") == b"first"
            async with store.transaction() as uow:
                await uow.blobs.put("code", "empty", b"")
            assert await store.repos.blobs.get("code", "empty") == b""
            assert await store.repos.blobs.exists("code", "empty")
        finally:
            await store.close()

    asyncio.run(main())


def test_small_parts_keep_their_order(make_store: StoreFactory) -> None:
    data = bytes(range(256)) * 5  # 1,280 bytes in 13 parts of 100: part 10 sorts after 9

    async def main() -> None:
        store = await make_store()
        try:
            async with store.database.transaction() as sql:
                await SqlBlobRepository(sql, part_bytes=100).put("code", "h3", data)
            assert await store.repos.blobs.get("code", "h3") == data
        finally:
            await store.close()

    asyncio.run(main())


def test_another_process_sees_a_blob_once_committed(make_store: StoreFactory) -> None:
    async def main() -> None:
        one, two = await make_store(), await make_store()
        try:
            async with one.transaction() as uow:
                await uow.blobs.put("code", "h4", b"shared")
            assert await two.repos.blobs.get("code", "h4") == b"shared"
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())
