"""`sources:`, `contacts:` and `groups:` in ondo.yaml: strict parsing with file:line, and plans."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ondo.backends.store import open_store
from ondo.deploy.manifest import Manifest, parse_manifest
from ondo.deploy.sources import plan_directory
from ondo.errors import ConfigError
from ondo.sources import kinds
from ondo.sources.book import SourceBook


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.KIND_MODULES, "scripted", ("tests.unit.sources.scripted_kind", ""))


def parse(text: str, root: Path) -> Manifest:
    return parse_manifest("name: home\n" + text, root, "ondo.yaml")


DIRECTORY = """\
sources:
  door: {kind: scripted, types: [door.opened]}
contacts:
  bob:
    mobile: "ntfy://ondo-bob"
    email: "mailto://bob:pw@mail.example?to=bob@example.org"
  carol: {mobile: "ntfy://ondo-carol"}
groups:
  alice.family: [carol, bob.mobile]
"""


def test_the_issue_example_parses(tmp_path: Path) -> None:
    manifest = parse(DIRECTORY, tmp_path)
    door = manifest.sources["door"]
    assert (door.kind, door.settings["types"], door.where) == (
        "scripted",
        ["door.opened"],
        "ondo.yaml:3 (sources.door)",
    )
    assert manifest.directory.contacts["bob"]["mobile"] == "ntfy://ondo-bob"
    assert manifest.directory.groups["alice.family"] == ("carol", "bob.mobile")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: [a]", "ondo.yaml:2 (sources): sources must be a mapping"),
        (
            "sources:\n  x: {}",
            "ondo.yaml:3 (sources.x): a source needs `kind:`, one of http, schedule",
        ),
        (
            "sources:\n  x: {kind: telex}",
            "kind must be one of http, schedule, ftp, bucket, postgres, sqlite, mqtt, smtp,"
            " ondo, scripted, got 'telex'",
        ),
        ("sources:\n  Bad!: {kind: scripted}", "source name 'Bad!' must match"),
        (
            "sources:\n  x:\n    kind: scripted\n    topics: []",
            "ondo.yaml:5 (sources.x.topics): unknown key 'topics'; allowed here: kind, types",
        ),
        (
            "contacts:\n  bob: {mobile: 12}",
            "ondo.yaml:3 (contacts.bob.mobile): must be an Apprise URL",
        ),
        (
            "contacts:\n  bob: {mobile: 'nosuch://x'}",
            "ondo.yaml:3 (contacts.bob.mobile): Apprise cannot use nosuch:// URL",
        ),
        ("contacts:\n  bob: []", "a contact is a mapping of channel to address"),
        ("contacts:\n  bob: {Mobile Phone: 'ntfy://x'}", "channel name must match"),
        ("groups:\n  fam: []", "ondo.yaml:3 (groups.fam): a group is a non-empty list"),
        (
            "groups:\n  fam: [bob.mobile.x]",
            "must be a contact or contact.channel, got 'bob.mobile.x'",
        ),
        ("groups:\n  fam: 3", "a group is a non-empty list"),
    ],
)
def test_bad_declarations_are_named_with_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text + "\n", tmp_path)
    assert message in str(caught.value)


def test_a_kind_whose_library_is_missing_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kinds.KIND_MODULES, "scripted", ("ondo_not_installed_kind", "scripted"))
    with pytest.raises(ConfigError, match=r"pip install 'ondo\[scripted\]'"):
        parse("sources:\n  x: {kind: scripted}\n", tmp_path)


def test_plans_create_then_unchanged_update_and_delete(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        book = SourceBook(store)
        try:
            first = parse(DIRECTORY, tmp_path)
            steps = await plan_directory(
                book, first.sources, first.directory, "home", "default", 5.0
            )
            assert [(s.kind, s.name, s.change) for s in steps] == [
                ("source", "door", "create"),
                ("contact", "bob", "create"),
                ("contact", "carol", "create"),
                ("group", "alice.family", "create"),
            ]
            for step in steps:
                await step.apply(_Targets(book))  # type: ignore[arg-type]
            again = await plan_directory(
                book, first.sources, first.directory, "home", "default", 6.0
            )
            assert {s.change for s in again} == {"unchanged"}
            changed = parse(
                DIRECTORY.replace("door.opened]", "door.opened, door.closed]").replace(
                    "  alice.family: [carol, bob.mobile]\n", ""
                ),
                tmp_path,
            )
            steps = await plan_directory(
                book, changed.sources, changed.directory, "home", "default", 7.0
            )
            assert [(s.kind, s.name, s.change) for s in steps if s.change != "unchanged"] == [
                ("source", "door", "update"),
                ("group", "alice.family", "delete"),
            ]
        finally:
            await store.close()

    asyncio.run(main())


def test_a_group_member_must_exist(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}")
        await store.open()
        try:
            manifest = parse(
                "contacts:\n  bob: {mobile: 'ntfy://b'}\ngroups:\n  fam: [dave, bob.email]\n",
                tmp_path,
            )
            with pytest.raises(ConfigError, match="group 'fam': contact 'dave' is not declared"):
                await plan_directory(
                    SourceBook(store), {}, manifest.directory, "home", "default", 1.0
                )
            manifest = parse(
                "contacts:\n  bob: {mobile: 'ntfy://b'}\ngroups:\n  fam: [bob.email]\n", tmp_path
            )
            with pytest.raises(
                ConfigError, match="contact 'bob' has no channel 'email' \\(it has mobile\\)"
            ):
                await plan_directory(
                    SourceBook(store), {}, manifest.directory, "home", "default", 1.0
                )
        finally:
            await store.close()

    asyncio.run(main())


class _Targets:
    def __init__(self, book: SourceBook) -> None:
        self.sources = book
