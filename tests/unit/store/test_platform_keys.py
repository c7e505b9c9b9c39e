"""The platform's keys, on SQLite and PostgreSQL: created once, the same for every process."""

from __future__ import annotations

import asyncio

from tests.unit.store.conftest import StoreFactory


def test_the_first_key_stored_is_everyones(make_store: StoreFactory) -> None:
    async def main() -> None:
        one, two = await make_store(), await make_store()
        try:
            keys_one, keys_two = one.repos.platform_keys, two.repos.platform_keys
            first, second = await asyncio.gather(
                keys_one.ensure("signing", b"\x00" * 32, 1.0),
                keys_two.ensure("signing", b"\xff" * 32, 2.0),
            )
            assert first == second and first in (b"\x00" * 32, b"\xff" * 32)
            assert await keys_two.ensure("signing", b"\x01" * 32, 3.0) == first
            assert await keys_one.ensure("other", b"\x02" * 32, 4.0) == b"\x02" * 32
        finally:
            await one.close()
            await two.close()

    asyncio.run(main())
