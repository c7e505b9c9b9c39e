"""The consent grants repository's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from ondo.backends.store.repositories.grants import GRANTS_TOPIC, Grant
from tests.unit.store.conftest import StoreFactory


def grant(gid: str, subject: str = "alice", grantee: str = "bob", **more: object) -> Grant:
    values: dict[str, object] = {
        "id": gid,
        "namespace": "clinic",
        "subject": subject,
        "grantee": grantee,
        "types": ("health.*",),
        "fields": None,
        "purpose": "my GP",
        "created_at": 1.0,
    }
    values.update(more)
    return Grant(**values)  # type: ignore[arg-type]


def test_grants_are_kept_listed_by_party_and_revoked(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        heard: list[str] = []
        store.subscribe(GRANTS_TOPIC, heard.append)
        try:
            grants = store.repos.grants
            first = grant("g1", fields=("systolic", "vitals.pulse"), expires_at=100.0)
            await grants.add(first)
            await grants.add(grant("g2", "carol", "bob", created_at=2.0, types=("a", "b.*")))
            await grants.add(grant("g3", "dave", "erin", created_at=3.0))
            await grants.add(grant("g4", namespace="lab", created_at=4.0))
            assert await grants.get("clinic", "g1") == first
            assert await grants.get("lab", "g1") is None  # another namespace's id
            assert [g.id for g in await grants.of("clinic", "bob")] == ["g1", "g2"]
            assert [g.id for g in await grants.of("clinic", "alice")] == ["g1"]
            revoked = await grants.revoke("clinic", "g2", 5.0)
            assert revoked is not None and revoked.revoked_at == 5.0
            again = await grants.revoke("clinic", "g2", 6.0)  # the first revocation stays
            assert again is not None and again.revoked_at == 5.0
            assert await grants.revoke("clinic", "nope", 6.0) is None
            live = await grants.in_namespace("clinic")
            assert [g.id for g in live] == ["g1", "g3"]
            every = await grants.in_namespace("clinic", revoked=True)
            assert [g.id for g in every] == ["g1", "g2", "g3"]
            assert every[1].types == ("a", "b.*") and every[1].fields is None
            assert "clinic" in heard and "lab" in heard
        finally:
            await store.close()

    asyncio.run(main())


def test_a_grant_is_live_until_it_expires_or_is_revoked() -> None:
    g = grant("g1", expires_at=10.0, types=("health.*", "diet.meal"))
    assert g.live(9.9) and not g.live(10.0)
    assert not grant("g2", revoked_at=1.0).live(0.0)
    assert g.covers_type("health.blood_pressure") and g.covers_type("diet.meal")
    assert not g.covers_type("diet.meals") and not g.covers_type("wealth.x")
