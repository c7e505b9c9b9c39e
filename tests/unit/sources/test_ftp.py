"""The ftp source on a real supervisor, with real uploads through ftplib."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import hashlib
import io
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ondo.errors import ConfigError
from ondo.sources.base import PlainWhere
from ondo.sources.objects import event_id
from ondo.sources.passwords import BadHash, hash_password, verify_password
from tests.unit.sources.object_sources import Sources

T = TypeVar("T")
CSV = b"name,mark\nalice,19\nbob,17\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def ftp_source(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Sources, int]]:
    port = free_port()
    settings = {
        "port": port,
        "users": {"alice": {"password": "s3cret"}, "bob": {"password": "b0b"}},
        **settings,
    }
    async with Sources(tmp_path) as sources:
        await sources.deploy("uploads", "ftp", settings)
        yield sources, port


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


def login(port: int, user: str = "alice", password: str = "s3cret") -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=20)
    try:
        ftp.login(user, password)
    except BaseException:
        ftp.close()
        raise
    return ftp


async def in_thread(call: Callable[[], T]) -> T:
    """ftplib blocks: run it beside the event loop that runs the source."""
    return await asyncio.to_thread(call)


def upload(port: int, name: str, body: bytes, user: str = "alice", pw: str = "s3cret") -> str:
    with login(port, user, pw) as ftp:
        if "/" in name:
            folder = name.rsplit("/", 1)[0]
            with contextlib.suppress(ftplib.error_perm):  # already there
                ftp.mkd(folder)
        return ftp.storbinary(f"STOR {name}", io.BytesIO(body))


def home(sources: Sources, user: str) -> Path:
    return sources.root / "sources" / "default" / "uploads" / "homes" / user


def test_a_completed_upload_emits_object_created_with_s3_style_data(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path) as (sources, port):
            status = sources.status("uploads")
            assert status.state == "connected"
            assert status.detail == f"listening on ftp://127.0.0.1:{port}"
            reply = await in_thread(lambda: upload(port, "reports/q1.csv", CSV))
            assert reply.startswith("226")
            [event] = await sources.wait_events(1)
            stored = home(sources, "alice") / "reports" / "q1.csv"
            assert stored.read_bytes() == CSV
            mtime_ns = stored.stat().st_mtime_ns
            etag = hashlib.md5(CSV).hexdigest()
            assert event.type == "object.created"
            assert event.source == "uploads"
            assert event.subject == "alice/reports/q1.csv"
            assert event.id == event_id(
                "default", "uploads", "alice/reports/q1.csv", etag, mtime_ns
            )
            assert event.data == {
                "bucket": "uploads",
                "key": "alice/reports/q1.csv",
                "size": len(CSV),
                "etag": etag,
                "content_type": "text/csv",
                "sequencer": f"{mtime_ns:016X}",
                "uploader": "alice",
                "path": str(stored),
            }
            assert sources.status("uploads").events == 1

    asyncio.run(body())


def test_wrong_passwords_and_unknown_users_are_refused(tmp_path: Path) -> None:
    hashed = hash_password("c0rrect horse")
    users = {"alice": {"password": "s3cret"}, "carol": {"password_hash": hashed}}

    async def body() -> None:
        async with ftp_source(tmp_path, users=users) as (sources, port):
            for user, password in (("alice", "wrong"), ("mallory", "s3cret"), ("carol", "x")):
                with pytest.raises(ftplib.error_perm, match="530"):
                    await in_thread(lambda u=user, p=password: login(port, u, p).close())
            reply = await in_thread(lambda: upload(port, "a.txt", b"hi", "carol", "c0rrect horse"))
            assert reply.startswith("226")
            [event] = await sources.wait_events(1)
            assert event.data["key"] == "carol/a.txt" and event.data["uploader"] == "carol"

    asyncio.run(body())


def test_an_upload_over_the_file_quota_is_refused_and_recorded(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path, quota={"file": "1KB"}) as (sources, port):
            with pytest.raises(ftplib.error_perm) as refused:
                await in_thread(lambda: upload(port, "big.bin", b"x" * 300_000))
            assert str(refused.value).startswith("552 Exceeded storage allocation")
            assert "uploads are limited to 1000 B" in str(refused.value)
            status = await sources.until(lambda: (s := sources.status("uploads")).errors and s)
            assert status.last_error == (
                "upload of /big.bin by alice refused: uploads are limited to 1000 B"
            )
            assert not (home(sources, "alice") / "big.bin").exists()
            await in_thread(lambda: upload(port, "small.bin", b"y" * 1000))
            [event] = await sources.wait_events(1)
            assert event.data["key"] == "alice/small.bin"  # the refused one made no event

    asyncio.run(body())


def test_an_append_over_quota_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path, quota={"file": 10}) as (sources, port):

            def work() -> None:
                with login(port) as ftp:
                    ftp.storbinary("STOR a.txt", io.BytesIO(b"hello "))
                    with pytest.raises(ftplib.error_perm, match=r"^552 "):
                        ftp.storbinary("APPE a.txt", io.BytesIO(b"world!"))

            await in_thread(work)
            assert (home(sources, "alice") / "a.txt").read_bytes() == b"hello "
            await sources.until(lambda: sources.status("uploads").errors == 1)
            assert [e.data["size"] for e in await sources.events()] == [6]

    asyncio.run(body())


def test_the_total_quota_counts_a_users_files_and_not_the_others(tmp_path: Path) -> None:
    users = {
        "alice": {"password": "s3cret", "quota": {"total": 1500}},
        "bob": {"password": "b0b"},
    }

    async def body() -> None:
        async with ftp_source(tmp_path, users=users) as (sources, port):
            await in_thread(lambda: upload(port, "one.bin", b"1" * 1000))
            await in_thread(lambda: upload(port, "one.bin", b"2" * 1200))  # replaces: fits
            with pytest.raises(ftplib.error_perm, match=r"552.*alice's 1.5 KiB quota is full"):
                await in_thread(lambda: upload(port, "two.bin", b"3" * 400))
            await in_thread(lambda: upload(port, "two.bin", b"4" * 5000, "bob", "b0b"))
            created = await sources.wait_events(3)
            assert [e.data["key"] for e in created] == ["alice/one.bin"] * 2 + ["bob/two.bin"]
            assert sources.status("uploads").errors == 1
            assert (home(sources, "alice") / "one.bin").read_bytes() == b"2" * 1200
            assert not (home(sources, "alice") / "two.bin").exists()

    asyncio.run(body())


def test_a_user_cannot_leave_the_home_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    async def body() -> None:
        async with ftp_source(tmp_path) as (sources, port):
            (home(sources, "alice") / "out").symlink_to(outside)

            def escape() -> tuple[str, list[str]]:
                with login(port) as ftp:
                    ftp.storbinary("STOR ../../../escape.txt", io.BytesIO(b"x"))
                    ftp.cwd("../..")
                    where = ftp.pwd()
                    with pytest.raises(ftplib.error_perm, match="550"):
                        ftp.storbinary("STOR out/planted.txt", io.BytesIO(b"x"))
                    with pytest.raises(ftplib.error_perm, match="550"):
                        ftp.storbinary("STOR /bob/x.txt", io.BytesIO(b"x"))
                    return where, ftp.nlst()

            where, listed = await in_thread(escape)
            assert where == "/"
            assert sorted(listed) == ["escape.txt", "out"]
            assert (home(sources, "alice") / "escape.txt").read_bytes() == b"x"
            assert list(outside.iterdir()) == []
            assert not (home(sources, "bob") / "x.txt").exists()
            [event] = await sources.wait_events(1)
            assert event.data["key"] == "alice/escape.txt"

    asyncio.run(body())


def test_deleting_and_renaming_emit_object_events(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path) as (sources, port):

            def work() -> None:
                with login(port) as ftp:
                    ftp.storbinary("STOR q1.csv.part", io.BytesIO(CSV))
                    ftp.rename("q1.csv.part", "q1.csv")
                    ftp.delete("q1.csv")

            await in_thread(work)
            events = await sources.wait_events(4)
            assert [(e.type, e.data["key"]) for e in events] == [
                ("object.created", "alice/q1.csv.part"),
                ("object.deleted", "alice/q1.csv.part"),
                ("object.created", "alice/q1.csv"),
                ("object.deleted", "alice/q1.csv"),
            ]
            assert events[2].data["etag"] == hashlib.md5(CSV).hexdigest()
            assert set(events[3].data) == {"bucket", "key", "sequencer", "uploader"}

    asyncio.run(body())


def test_appended_and_resumed_uploads_tell_the_whole_files_etag(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path) as (sources, port):

            def work() -> None:
                with login(port) as ftp:
                    ftp.storbinary("STOR a.txt", io.BytesIO(b"hello "))
                    ftp.storbinary("APPE a.txt", io.BytesIO(b"world"))
                    ftp.storbinary("STOR b.txt", io.BytesIO(b"abcdef"))
                    ftp.storbinary("STOR b.txt", io.BytesIO(b"XYZ"), rest=3)

            await in_thread(work)
            events = await sources.wait_events(4)
            assert [(e.data["key"], e.data["size"], e.data["etag"]) for e in events[1::2]] == [
                ("alice/a.txt", 11, hashlib.md5(b"hello world").hexdigest()),
                ("alice/b.txt", 6, hashlib.md5(b"abcXYZ").hexdigest()),
            ]

    asyncio.run(body())


def test_removing_the_source_closes_the_server_and_frees_the_port(tmp_path: Path) -> None:
    async def body() -> None:
        async with ftp_source(tmp_path) as (sources, port):
            ftp = await in_thread(lambda: login(port))  # a client still connected
            await sources.remove("uploads")
            await sources.until(lambda: not listening(port))
            with pytest.raises((EOFError, OSError)):  # the server hung up on it
                await in_thread(ftp.pwd)
            ftp.close()
            with socket.socket() as sock:  # the port is free, as a restarted server finds it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))

    asyncio.run(body())


def test_a_taken_port_is_shown_as_retrying_with_the_reason(tmp_path: Path) -> None:
    async def body() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            async with Sources(tmp_path) as sources:
                await sources.deploy(
                    "uploads", "ftp", {"port": port, "users": {"a": {"password": "p"}}}
                )
                status = await sources.until(lambda: (s := sources.status("uploads")).errors and s)
                assert status.state == "retrying"
                assert "Address already in use" in (status.last_error or "")

    asyncio.run(body())


# --- settings and password hashes (no server) ------------------------------------------


def validate(settings: dict[str, Any]) -> dict[str, Any]:
    from ondo.sources.ftp import KIND

    return KIND.validate(settings, PlainWhere(Path("/app"), "sources.uploads"))


def test_settings_get_their_defaults_and_quotas_per_user() -> None:
    spec = validate(
        {
            "passive_ports": "60000-60010",
            "quota": {"file": "10MB"},
            "users": {
                "alice": {"password": "s3cret"},
                "bob": {"password_hash": hash_password("x"), "quota": {"total": "1GiB"}},
            },
        }
    )
    assert spec["host"] == "127.0.0.1" and spec["port"] == 2121
    assert spec["passive_ports"] == [60000, 60010]
    assert spec["quota"] == {"file": 10_000_000, "total": None}
    assert spec["users"]["alice"] == {
        "password": "s3cret",
        "quota": {"file": 10_000_000, "total": None},
    }
    assert spec["users"]["bob"]["quota"] == {"file": 10_000_000, "total": 1 << 30}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "sources.uploads.users: must name at least one user"),
        ({"users": {"alice": {}}}, "sources.uploads.users.alice: give exactly one of password"),
        (
            {"users": {"alice": {"password": "a", "password_hash": "b"}}},
            "give exactly one of password and password_hash",
        ),
        ({"users": {"../x": {"password": "a"}}}, "user name '../x' must match"),
        ({"users": {"a": {"password": ""}}}, "users.a.password: must be a non-empty string"),
        (
            {"users": {"a": {"password_hash": "md5$abc"}}},
            "users.a.password_hash: a password hash looks like scrypt$N$r$p$SALT$KEY;"
            " make one with: python -m ondo.sources.ftp hash",
        ),
        ({"users": {"a": {"password": "p", "home": "/"}}}, "users.a.home: unknown key 'home'"),
        ({"port": 70000, "users": {"a": {"password": "p"}}}, "port: must be a TCP port"),
        ({"host": "example.org", "users": {"a": {"password": "p"}}}, "host: must be an IP"),
        ({"passive_ports": "9-3", "users": {"a": {"password": "p"}}}, "range 9-3 is empty"),
        ({"quota": {"file": "lots"}, "users": {"a": {"password": "p"}}}, "quota.file: must be"),
        ({"quota": {"file": 0}, "users": {"a": {"password": "p"}}}, "more than zero bytes"),
        ({"quota": {"max": 1}, "users": {"a": {"password": "p"}}}, "quota.max: unknown key"),
        ({"anonymous": True, "users": {"a": {"password": "p"}}}, "unknown key 'anonymous'"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(settings)
    assert message in str(error.value)


def test_a_password_hash_checks_the_password_and_is_salted() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret!", first)
    with pytest.raises(BadHash, match="N must be a power of two"):
        verify_password("x", first.replace("$16384$", "$1000$"))


def test_the_hash_command_reads_the_password_from_standard_input() -> None:
    made = subprocess.run(
        [sys.executable, "-m", "ondo.sources.ftp", "hash"],
        input="c0rrect horse\n",
        capture_output=True,
        text=True,
        check=True,
    )
    hashed = made.stdout.strip()
    assert verify_password("c0rrect horse", hashed)
    assert validate({"users": {"a": {"password_hash": hashed}}})["users"]["a"]["password_hash"]
