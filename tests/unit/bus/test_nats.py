"""The NATS bus beyond the shared contract: URL options, cluster names, isolation, errors."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ondo.backends.bus import open_bus
from ondo.backends.bus.nats import NatsBus
from ondo.backends.store.repositories.events import IndexedEvent
from ondo.errors import BusClosed, BusError, ConfigError
from ondo.events import CloudEvent
from tests.services import NATS_URL, require_nats, unique_cluster
from tests.unit.bus.indexed import IndexedNatsBus
from tests.unit.bus.nats_cleanup import delete_cluster

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ev(n: int, source: str = "/s") -> CloudEvent:
    return CloudEvent(id=f"e{n}", source=source, type="t.happened", time=WHEN, data={"n": n})


def nats_bus(url: str, **options: object) -> NatsBus:
    bus = open_bus(url, **options)  # type: ignore[arg-type]
    assert isinstance(bus, NatsBus)
    return bus


def test_url_options_are_parsed() -> None:
    bus = nats_bus(
        "nats://127.0.0.1:4222,127.0.0.1:4223?max_age=2w&max_bytes=512MiB&replicas=3&timeout=250ms",
        cluster="staging-2",
    )
    options = bus.options
    assert options.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    assert options.max_age_s == 14 * 86400
    assert options.max_bytes == 512 * 1024 * 1024
    assert (options.replicas, options.timeout_s) == (3, 0.25)
    assert options.stream == "staging-2_events"
    assert options.subject_root == "staging-2.ev"
    assert nats_bus("nats://h:1?max_bytes=10G&max_age=0").options.max_bytes == 10**10


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nats://h:1?fast=1", r"unknown option\(s\) \['fast'\]; known for nats://: dedup_window"),
        ("nats://h:1?max_age=soon", r"max_age='soon' is not a duration; write it like 90s"),
        ("nats://h:1?max_age=-5", "max_age must not be negative"),
        ("nats://h:1?max_bytes=lots", r"max_bytes='lots' is not a size; write it like 512MiB"),
        ("nats://h:1?replicas=two", r"replicas='two' must be a whole number"),
        ("nats://h:1?replicas=7", "replicas must be 1 to 5, got 7"),
        ("nats://h:1?timeout=0", "timeout must be more than 0"),
        ("nats://?max_age=1d", "names no server: use nats://HOST:PORT"),
        ("nats://h:1?max_age=1h", r"dedup window \(86400 s\) is longer than max_age \(3600 s\)"),
    ],
)
def test_bad_url_options_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_bus(url)


@pytest.mark.parametrize("cluster", ["", "a.b", "a b", "a*", "x>", "é", "x" * 65])
def test_bad_cluster_names_are_refused(cluster: str) -> None:
    with pytest.raises(ConfigError, match="use 1-64 letters, digits, '-' or '_'"):
        open_bus("nats://127.0.0.1:4222", cluster=cluster)


def test_other_backends_ignore_the_cluster() -> None:
    asyncio.run(open_bus("memory://", cluster="any.thing").close())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_an_unreachable_server_is_a_bus_error_naming_the_url_and_the_fix() -> None:
    url = f"nats://127.0.0.1:{_free_port()}?timeout=1s"

    async def body() -> None:
        bus = open_bus(url)
        expected = rf"NATS at {re.escape(url)} is unreachable \(ConnectionRefused.*nats-server -js"
        with pytest.raises(BusError, match=expected):
            await bus.append([ev(1)])
        with pytest.raises(BusError, match="unreachable"):
            await bus.read(0)
        await bus.close()
        with pytest.raises(BusClosed):
            await bus.append([ev(1)])

    asyncio.run(body())


@pytest.fixture
def clusters() -> Iterator[list[str]]:
    require_nats()
    names = [unique_cluster(), unique_cluster()]
    yield names
    for name in names:
        delete_cluster(NATS_URL, name)


@pytest.mark.nats
def test_clusters_sharing_one_server_do_not_see_each_other(clusters: list[str]) -> None:
    async def body() -> None:
        first, second = (open_bus(NATS_URL, cluster=name) for name in clusters)
        try:
            assert [r.seq for r in await first.append([ev(1), ev(2)])] == [1, 2]
            assert (await second.append([ev(1)]))[0].duplicate is False
            await first.ack("dispatcher", 2)
            assert await second.committed("dispatcher") == 0
            assert [s.seq for s in await second.read(0)] == [1]
            assert await second.by_id("e2") == []
        finally:
            await first.close()
            await second.close()

    asyncio.run(body())


@pytest.mark.nats
def test_retention_options_reach_the_stream(clusters: list[str]) -> None:
    async def body() -> None:
        url = f"{NATS_URL}?max_age=3d&max_bytes=1MiB"
        bus = nats_bus(url, cluster=clusters[0], dedup_window_s=600.0)
        try:
            await bus.append([ev(1)])
            config = await _stream_config(clusters[0])
            assert config.max_age == 3 * 86400 and config.max_bytes == 1 << 20
            assert config.duplicate_window == 600
        finally:
            await bus.close()
        reopened = nats_bus(f"{NATS_URL}?max_age=4d", cluster=clusters[0], dedup_window_s=600.0)
        try:
            assert await reopened.last_seq() == 1  # the log is kept; its limits follow the URL
            config = await _stream_config(clusters[0])
            assert config.max_age == 4 * 86400 and config.max_bytes == -1
        finally:
            await reopened.close()

    asyncio.run(body())


async def _stream_config(cluster: str) -> object:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        return (await nc.jetstream().stream_info(f"{cluster}_events")).config
    finally:
        await nc.close()


@pytest.mark.nats
def test_namespaces_and_odd_ids_round_trip_through_subjects(clusters: list[str]) -> None:
    odd = CloudEvent(id="a.b *>\u00e9", source="urn:x y/.z", type="t", data=None)

    async def body() -> None:
        bus = open_bus(NATS_URL, cluster=clusters[0])
        try:
            await bus.append([odd], namespace="team.a b")
            await bus.append([odd])
            found = await bus.get(odd.source, odd.id, namespace="team.a b")
            assert found is not None and found.seq == 1 and found.namespace == "team.a b"
            assert [s.seq for s in await bus.by_id(odd.id)] == [1, 2]
            assert [s.seq for s in await bus.tail(5, namespace="team.a b")] == [1]
            assert [s.seq for s in await bus.since(WHEN, namespace="default")] == [2]
        finally:
            await bus.close()

    asyncio.run(body())


@pytest.mark.nats
def test_lookups_read_the_index_then_scan_what_it_does_not_hold_yet(
    clusters: list[str], tmp_path: Path
) -> None:
    async def body() -> None:
        indexed = IndexedNatsBus(NATS_URL, clusters[0], tmp_path / "ondo.db")
        await indexed.open()
        bus, index = indexed.bus, indexed.store.repos.event_index
        assert bus.indexed_by_store
        try:
            await bus.append([ev(1), ev(2), ev(3)])
            # Indexed: e1 and e3, not e2 (as if it were lost): the log past seq 3 is scanned,
            # so e2 is found only through the index, which does not have it.
            rows = [s for s in await bus.read(0) if s.event.id != "e2"]
            await index.add(
                [IndexedEvent(s.namespace, "/s", s.event.id, s.seq, "t", 0) for s in rows]
            )
            assert await bus.get("/s", "e2") is None
            found = await bus.get("/s", "e1")
            assert found is not None and found.seq == 1
            # Appended, not indexed yet (the dispatcher lags): found by the scan past seq 3.
            await bus.append([ev(4), ev(1, source="/b")], namespace="team-a")
            late = await bus.get("/b", "e1", namespace="team-a")
            assert late is not None and late.seq == 5
            assert [s.seq for s in await bus.by_id("e1")] == [1, 5]
            assert [s.seq for s in await bus.by_id("e1", namespace="team-a")] == [5]
            assert [s.seq for s in await bus.by_id("e4")] == [4]
            # Caught up: the same answers, from the index.
            await indexed.catch_up()
            assert await index.highest_seq() == 5
            assert [s.seq for s in await bus.by_id("e1")] == [1, 5]
            assert (await bus.get("/b", "e1", namespace="team-a")) == late
            # A row whose event the log no longer holds is a miss, not an answer.
            assert await bus.prune(datetime.now(UTC), limit=1) == 1
            assert await bus.get("/s", "e1") is None
            assert [s.seq for s in await bus.by_id("e1")] == [5]
        finally:
            await indexed.close()

    asyncio.run(body())


@pytest.mark.nats
def test_without_an_index_lookups_scan_the_log(clusters: list[str]) -> None:
    async def body() -> None:
        bus = nats_bus(NATS_URL, cluster=clusters[0])
        assert not bus.indexed_by_store
        try:
            await bus.append([ev(1), ev(2), ev(1, source="/b")])
            found = await bus.get("/b", "e1")
            assert found is not None and found.seq == 3
            assert [s.seq for s in await bus.by_id("e1")] == [1, 3]
        finally:
            await bus.close()

    asyncio.run(body())


@pytest.mark.nats
def test_an_index_ahead_of_the_log_is_not_trusted_for_what_it_lacks(
    clusters: list[str], tmp_path: Path
) -> None:
    async def body() -> None:
        indexed = IndexedNatsBus(NATS_URL, clusters[0], tmp_path / "ondo.db")
        await indexed.open()
        bus, index = indexed.bus, indexed.store.repos.event_index
        try:
            # Rows of a stream since deleted (the store was kept): seqs the new log never reached.
            await index.add([IndexedEvent("default", "/s", "old", 99, "t", 0)])
            await bus.append([ev(1), ev(2)])
            found = await bus.get("/s", "e2")
            assert found is not None and found.seq == 2
            assert await bus.by_id("old") == []
        finally:
            await indexed.close()

    asyncio.run(body())
