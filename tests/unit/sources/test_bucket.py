"""The bucket source on a real supervisor, watching a real directory (watchfiles)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.bucket import KIND
from tests.unit.sources.object_sources import Sources


def test_a_written_file_is_created_and_a_deleted_one_deleted(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "old").mkdir(parents=True)
    (inbox / "old" / "there-before.csv").write_text("a\n")

    async def body() -> None:
        async with Sources(tmp_path) as sources:
            await sources.deploy("drop", "bucket", {"path": str(inbox), "settle": "200ms"})
            assert sources.status("drop").detail == f"watching {inbox}"
            (inbox / "reports").mkdir()  # written at once, before the watcher watches it
            target = inbox / "reports" / "q1.csv"
            target.write_bytes(b"name,mark\n")
            [created] = await sources.wait_events(1)
            assert created.type == "object.created" and created.source == "drop"
            assert created.subject == "reports/q1.csv"
            stat = target.stat()
            assert created.data == {
                "bucket": "drop",
                "key": "reports/q1.csv",
                "size": 10,
                "etag": hashlib.md5(b"name,mark\n").hexdigest(),
                "content_type": "text/csv",
                "sequencer": f"{stat.st_mtime_ns:016X}",
                "path": str(target),
            }
            target.unlink()
            (inbox / "old" / "there-before.csv").unlink()
            events = await sources.wait_events(3)
            assert sorted((e.type, e.data["key"]) for e in events[1:]) == [
                ("object.deleted", "old/there-before.csv"),
                ("object.deleted", "reports/q1.csv"),
            ]
            assert set(events[1].data) == {"bucket", "key", "sequencer"}

    asyncio.run(body())


def test_files_in_new_directories_are_seen_however_quickly_written(tmp_path: Path) -> None:
    async def body() -> None:
        async with Sources(tmp_path) as sources:
            await sources.deploy("drop", "bucket", {"path": "w", "create": True, "settle": 0.1})
            for n in range(5):
                deep = tmp_path / "w" / f"d{n}" / "a" / "b"
                deep.mkdir(parents=True)
                (deep / "x.csv").write_text(str(n))
            events = await sources.wait_events(5)
            assert sorted(e.data["key"] for e in events) == [f"d{n}/a/b/x.csv" for n in range(5)]

    asyncio.run(body())


def test_a_file_is_announced_once_it_stopped_growing(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    async def body() -> None:
        async with Sources(tmp_path) as sources:
            await sources.deploy("drop", "bucket", {"path": str(inbox), "settle": "400ms"})
            growing = inbox / "big.bin"
            with growing.open("wb") as file:
                for _ in range(8):  # written in parts, each sooner than `settle` after the last
                    file.write(b"x" * 1000)
                    file.flush()
                    await asyncio.sleep(0.1)
            [event] = await sources.wait_events(1)
            assert event.data["size"] == 8000
            assert event.data["etag"] == hashlib.md5(b"x" * 8000).hexdigest()

    asyncio.run(body())


def test_patterns_recursive_and_hidden_files_choose_what_is_announced(tmp_path: Path) -> None:
    async def body() -> None:
        async with Sources(tmp_path) as sources:
            settings = {"path": ".", "patterns": ["*.csv"], "recursive": False, "settle": 0.1}
            await sources.deploy("drop", "bucket", settings)
            (tmp_path / "sub").mkdir()
            (tmp_path / "sub" / "deep.csv").write_text("x")  # not recursive
            (tmp_path / ".partial.csv").write_text("x")  # hidden
            (tmp_path / "notes.txt").write_text("x")  # not a pattern
            (tmp_path / "take.csv").write_text("x")
            [event] = await sources.wait_events(1)
            assert event.data["key"] == "take.csv"
            (tmp_path / "last.csv").write_text("y")  # after it: the others had their chance
            events = await sources.wait_events(2)
            assert [e.data["key"] for e in events] == ["take.csv", "last.csv"]

    asyncio.run(body())


def test_a_removed_directory_shows_the_source_retrying(tmp_path: Path) -> None:
    watched = tmp_path / "gone"
    watched.mkdir()

    async def body() -> None:
        async with Sources(tmp_path) as sources:
            await sources.deploy("drop", "bucket", {"path": str(watched)})
            watched.rmdir()
            status = await sources.until(lambda: (s := sources.status("drop")).errors and s)
            assert status.state == "retrying"
            assert str(watched) in (status.last_error or "")

    asyncio.run(body())


def test_create_makes_the_directory_when_the_source_starts(tmp_path: Path) -> None:
    async def body() -> None:
        async with Sources(tmp_path) as sources:
            await sources.deploy("drop", "bucket", {"path": "later/in", "create": True})
            assert (tmp_path / "later" / "in").is_dir()
            assert sources.status("drop").state == "connected"

    asyncio.run(body())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "sources.drop.path: must be the directory to watch, got None"),
        ({"path": "nope"}, "does not exist; create it, or add `create: true`"),
        ({"path": "file.txt"}, "file.txt is not a directory"),
        ({"path": ".", "recursive": "yes"}, "sources.drop.recursive: must be true or false"),
        ({"path": ".", "patterns": [1]}, "sources.drop.patterns: must be a list of glob"),
        ({"path": ".", "settle": "soon"}, "sources.drop.settle: duration 'soon'"),
        ({"path": ".", "settle": "2h"}, "sources.drop.settle: must be at most 1h"),
        ({"path": ".", "watch": True}, "sources.drop.watch: unknown key 'watch'"),
    ],
)
def test_bad_settings_name_the_field(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError) as error:
        KIND.validate(settings, PlainWhere(tmp_path, "sources.drop"))
    assert message in str(error.value)


def test_relative_paths_resolve_against_the_app_directory(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    spec = KIND.validate({"path": "./inbox", "patterns": "*.csv"}, PlainWhere(tmp_path))
    assert spec == {
        "path": str((tmp_path / "inbox").resolve()),
        "create": False,
        "recursive": True,
        "patterns": ["*.csv"],
        "settle": 1.0,
    }
