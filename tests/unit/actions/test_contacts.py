"""notify's directory: recipient names resolved to channels, addresses masked, the manifest of a
deploy laid over the stored directory, and the cache following the store's change feed
(SQLite and PostgreSQL, two stores standing for two processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ondo.actions.contacts import Book, Directory, declared, mask_address, recipients
from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.sources import StoredContact, StoredGroup
from ondo.errors import RuleError
from tests.unit.store.conftest import make_store, store_url

__all__ = ["make_store", "store_url"]  # the fixtures, used by name

BOOK = Book(
    contacts={
        "bob": {"mobile": "ntfy://bob-phone", "email": "mailto://u:p@example.org?to=bob@ex.org"},
        "carol": {"mobile": "ntfy://carol"},
        "dave": {"email": "mailto://dave:secret@example.net", "pager": "json://10.0.0.1/p"},
        "alice": {"family": "ntfy://alice-fam"},
    },
    groups={"alice.family": ("carol", "dave.email"), "everyone": ("bob", "carol")},
)


def names(channels: list[object]) -> list[str]:
    return [f"{c.name}:{c.role}" for c in channels]  # type: ignore[attr-defined]


def test_a_channel_a_contact_and_a_group() -> None:
    assert names(BOOK.resolve("bob.mobile", "default")) == ["bob.mobile:to"]
    assert names(BOOK.resolve("bob", "default")) == ["bob.email:to", "bob.mobile:to"]
    # A group's name wins over contact alice's channel "family".
    assert names(BOOK.resolve("alice.family", "default", "cc")) == [
        "carol.mobile:cc",
        "dave.email:cc",
    ]
    assert names(BOOK.resolve("alice", "default")) == ["alice.family:to"]


def test_each_channel_once_and_the_first_role_wins() -> None:
    found = recipients(BOOK, "default", "bob.mobile", ["everyone", "alice.family"])
    assert names(found) == [
        "bob.mobile:to",
        "bob.email:cc",
        "carol.mobile:cc",
        "dave.email:cc",
    ]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("eve", "there is no contact or group 'eve' in namespace 'default'"),
        ("bob.pager", "contact 'bob' has no channel 'pager' (it has email, mobile)"),
        ("eve.mobile", "no contact or group 'eve.mobile'"),
    ],
)
def test_unknown_names_are_named(name: str, words: str) -> None:
    with pytest.raises(RuleError, match=words.replace("(", r"\(").replace(")", r"\)")):
        BOOK.resolve(name, "default")


def test_a_group_member_that_went_away_names_the_group() -> None:
    book = Book(contacts={"carol": {"mobile": "ntfy://c"}}, groups={"fam": ("carol", "zed")})
    with pytest.raises(RuleError, match=r"notify zed \(in group 'fam'\)"):
        book.resolve("fam", "default")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mailto://bob:secret@example.org", "b***@example.org"),
        ("mailtos://user:pw@gmail.com?to=bob@example.org", "b***@example.org"),
        ("mailto://user:pw@gmail.com?to=bob%40example.org", "b***@example.org"),
        ("json://127.0.0.1:8080/bob", "json://1***"),
        ("ntfy://alice-alerts", "ntfy://a***"),
        ("tgram://123456:ABCDEF@987654", "tgram://9***"),
        ("not a url", "***"),
    ],
)
def test_addresses_are_masked(url: str, shown: str) -> None:
    masked = mask_address(url)
    assert masked == shown
    assert "secret" not in masked and "pw" not in masked and "ABCDEF" not in masked


def test_a_deploy_sees_the_directory_it_deploys(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        for name, app in (("bob", "health"), ("old", "health"), ("x", "other")):
            await store.repos.directory.put_contact(
                StoredContact("default", name, {"m": f"ntfy://{name}"}, app)
            )
        directory = Directory(store.repos.directory, store.subscribe)
        await directory.start()
        try:
            manifest = {"carol": {"mobile": "ntfy://c"}}
            with declared("default", "health", manifest, {"fam": ("carol",)}):
                planned = directory.book("default")
                elsewhere = directory.book("tenant")
            assert names(planned.resolve("fam", "default")) == ["carol.mobile:to"]
            assert names(planned.resolve("x", "default")) == ["x.m:to"]  # another app's stays
            with pytest.raises(RuleError, match="'old'"):  # the app no longer declares it
                planned.resolve("old", "default")
            assert elsewhere.contacts == {}  # only the deploy's namespace
            assert "carol" not in directory.book("default").contacts  # only while planning
        finally:
            await directory.stop()
            await store.close()

    asyncio.run(scenario())


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_directory_follows_the_change_feed(
    make_store: Callable[[], Awaitable[Store]], store_url: tuple[str, str]
) -> None:
    """On PostgreSQL the writer is another store (another process's view); SQLite's change
    feed is the process's own, so there the writer is the same store."""

    async def scenario() -> None:
        ours = await make_store()
        theirs = await make_store() if store_url[0].startswith("postgres") else ours
        await theirs.repos.directory.put_contact(StoredContact("default", "bob", {"m": "ntfy://b"}))
        directory = Directory(ours.repos.directory, ours.subscribe)
        await directory.start()
        try:
            assert names(directory.book("default").resolve("bob", "default")) == ["bob.m:to"]
            await theirs.repos.directory.put_contact(
                StoredContact("tenant", "eve", {"m": "ntfy://e"})
            )
            await theirs.repos.directory.put_group(StoredGroup("default", "fam", ("bob.m",)))
            await until(lambda: "fam" in directory.book("default").groups, "the group")
            await until(lambda: "eve" in directory.book("tenant").contacts, "the namespace")
            await theirs.repos.directory.delete_contact("default", "bob")
            await until(lambda: "bob" not in directory.book("default").contacts, "the delete")
        finally:
            await directory.stop()
            await ours.close()
            if theirs is not ours:
                await theirs.close()

    asyncio.run(scenario())
