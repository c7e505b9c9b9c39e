"""open_bus: URL schemes, options and the errors that name the fix."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ondo.backends.bus import open_bus
from ondo.backends.bus.memory import MemoryBus
from ondo.backends.bus.sqlite import SqliteBus
from ondo.errors import ConfigError


def close(bus: object) -> None:
    asyncio.run(bus.close())  # type: ignore[attr-defined]


def test_memory_url() -> None:
    bus = open_bus("memory://")
    assert isinstance(bus, MemoryBus)
    close(bus)


@pytest.mark.parametrize("slashes", ["/", "//", "///"])
def test_sqlite_url_with_an_absolute_path(tmp_path: Path, slashes: str) -> None:
    bus = open_bus(f"sqlite://{slashes}{str(tmp_path).lstrip('/')}/sub/bus.db")
    assert isinstance(bus, SqliteBus)
    assert bus.path == tmp_path / "sub" / "bus.db"
    close(bus)
    assert (tmp_path / "sub" / "bus.db").exists()


def test_sqlite_url_options(tmp_path: Path) -> None:
    close(open_bus(f"sqlite://{tmp_path}/a.db?synchronous=NORMAL"))
    with pytest.raises(ConfigError, match="synchronous must be 'full' or 'normal'"):
        open_bus(f"sqlite://{tmp_path}/b.db?synchronous=off")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['fast'\]"):
        open_bus(f"sqlite://{tmp_path}/c.db?fast=1")
    with pytest.raises(ConfigError, match="names no file"):
        open_bus("sqlite://")


def test_dedup_window_option() -> None:
    bus = open_bus("memory://?dedup_window=60")
    assert isinstance(bus, MemoryBus) and bus.dedup_window_s == 60.0
    close(bus)
    with pytest.raises(ConfigError, match="dedup_window must be a number of seconds"):
        open_bus("memory://?dedup_window=soon")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['synchronous'\]"):
        open_bus("memory://?synchronous=full")


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown bus URL 'kafka://x'.*sqlite://"):
        open_bus("kafka://x")
    with pytest.raises(ConfigError, match="unknown bus URL"):
        open_bus("/just/a/path")


def test_nats_without_its_extra_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ondo.backends.bus.nats", "ondo.backends.bus.nats_wire"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "nats", None)  # as if nats-py were not installed
    with pytest.raises(
        ConfigError, match=r"needs the package 'nats': run `pip install 'ondo\[nats\]'`"
    ):
        open_bus("nats://127.0.0.1:4222")
