"""The secret repository's contract and the Secrets service over it, on SQLite and PostgreSQL:
values stored encrypted, listed without values, cached until the change feed says otherwise."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from ondo.backends.store.repositories.secrets import SECRETS_TOPIC, SecretInfo, StoredSecret
from ondo.errors import Conflict, NotFound, PayloadTooLarge, SecretsKeyMissing, ValidationError
from ondo.security.secretbox import KEY_FILE, load_keys, new_key_text, parse_keys
from ondo.security.secrets import MAX_VALUE_BYTES, Secrets
from tests.unit.store.conftest import StoreFactory

KEYS = parse_keys(new_key_text(), "test")


def test_a_secret_is_added_replaced_listed_and_deleted(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        heard: list[str] = []
        store.subscribe(SECRETS_TOPIC, heard.append)
        try:
            repo = store.repos.secrets
            first = StoredSecret(SecretInfo("clinic", "DB", 1.0, 1.0, "alice"), b"\x01one")
            assert await repo.put(first) is True
            again = StoredSecret(SecretInfo("clinic", "DB", 5.0, 5.0, "bob"), b"\x01two")
            assert await repo.put(again) is False
            stored = await repo.get("clinic", "DB")
            assert stored == StoredSecret(SecretInfo("clinic", "DB", 1.0, 5.0, "alice"), b"\x01two")
            await repo.put(StoredSecret(SecretInfo("clinic", "API", 2.0, 2.0, "alice"), b"x"))
            await repo.put(StoredSecret(SecretInfo("other", "DB", 2.0, 2.0, "carol"), b"y"))
            assert [i.name for i in await repo.listing("clinic")] == ["API", "DB"]
            assert await repo.get("default", "DB") is None
            assert await repo.delete("clinic", "DB") is True
            assert await repo.delete("clinic", "DB") is False
            assert [i.name for i in await repo.listing("clinic")] == ["API"]
            assert await repo.get("other", "DB") is not None
            # (PostgreSQL also delivers this process's own notifications again, through LISTEN)
            assert set(heard) == {"clinic/DB", "clinic/API", "other/DB"}
        finally:
            await store.close()

    asyncio.run(main())


def test_the_service_encrypts_checks_and_caches_until_a_change(make_store: StoreFactory) -> None:
    async def main() -> None:
        store = await make_store()
        secrets = Secrets(store, lambda: KEYS, lambda: 10.0)
        secrets.watch()
        changed: list[tuple[str, str]] = []
        restarted: list[tuple[str, str]] = []

        async def restart(namespace: str, name: str) -> None:
            restarted.append((namespace, name))

        def listener(namespace: str, name: str) -> Coroutine[Any, Any, None]:
            changed.append((namespace, name))  # at once, as the feed delivers it
            return restart(namespace, name)  # later, and awaited by `put`

        secrets.on_change(listener)
        try:
            assert await secrets.put("default", "DB_PASSWORD", b"s3cret-value", "alice") is True
            stored = await store.repos.secrets.get("default", "DB_PASSWORD")
            assert stored is not None and b"s3cret" not in stored.ciphertext
            assert await secrets.values("default", ["DB_PASSWORD"], "function 'f'") == {
                "DB_PASSWORD": "s3cret-value"
            }
            assert await secrets.put("default", "DB_PASSWORD", b"rotated-value", "bob") is False
            assert set(changed) == {("default", "DB_PASSWORD")} and len(changed) >= 2
            assert len(restarted) >= 2  # `put` returned after its own change's restart
            values = await secrets.values("default", ["DB_PASSWORD"], "function 'f'")
            assert values == {"DB_PASSWORD": "rotated-value"}  # the cached one was dropped
            [info] = await secrets.listing("default")
            assert (info.name, info.created_by) == ("DB_PASSWORD", "alice")
            assert await secrets.missing("default", ["DB_PASSWORD", "NOPE"]) == ["NOPE"]
            await secrets.delete("default", "DB_PASSWORD")
            with pytest.raises(Conflict, match="ondo secrets set DB_PASSWORD"):
                await secrets.values("default", ["DB_PASSWORD"], "function 'f'")
            with pytest.raises(NotFound):
                await secrets.delete("default", "DB_PASSWORD")
        finally:
            secrets.close()
            await store.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("db_password", b"x", ValidationError),
        ("1ST", b"x", ValidationError),
        ("A" * 65, b"x", ValidationError),
        ("OK", b"", ValidationError),
        ("OK", b"\xff\xfe", ValidationError),
        ("OK", b"a\x00b", ValidationError),
        ("OK", b"x" * (MAX_VALUE_BYTES + 1), PayloadTooLarge),
    ],
)
def test_bad_names_and_values_are_refused_without_quoting_the_value(
    tmp_path: Path, name: str, value: bytes, error: type[Exception]
) -> None:
    async def main() -> None:
        from ondo.backends.store import open_store

        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            with pytest.raises(error) as refused:
                await Secrets(store, lambda: KEYS, lambda: 1.0).put("ns", name, value, "a")
            if len(value) > 2:
                assert value.decode("latin-1") not in str(refused.value)
            assert await store.repos.secrets.listing("ns") == []
        finally:
            await store.close()

    asyncio.run(main())


def test_the_database_file_never_holds_a_value(tmp_path: Path) -> None:
    async def main() -> None:
        from ondo.backends.store import open_store

        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            secrets = Secrets(store, lambda: KEYS, lambda: 1.0)
            await secrets.put("default", "TOKEN", b"plain-text-marker-42", "a")
        finally:
            await store.close()
        for path in tmp_path.iterdir():  # the database and its write-ahead log
            assert b"plain-text-marker-42" not in path.read_bytes(), path

    asyncio.run(main())


def test_a_shared_store_needs_the_configured_key(make_store: StoreFactory, tmp_path: Path) -> None:
    """The key a platform uses (platform.py): made in the data dir for the embedded store only."""

    async def main() -> None:
        store = await make_store()
        secrets = Secrets(store, lambda: load_keys("", tmp_path, store.shared), lambda: 1.0)
        try:
            if not store.shared:
                assert await secrets.put("default", "TOKEN", b"value", "a") is True
                assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
                return
            with pytest.raises(SecretsKeyMissing, match="set ONDO_SECRETS_KEY"):
                await secrets.put("default", "TOKEN", b"value", "a")
            assert await secrets.listing("default") == []
            assert not (tmp_path / KEY_FILE).exists()
        finally:
            await store.close()

    asyncio.run(main())
