"""The event bus: `open_bus(url)` picks a backend by URL scheme; see base.py for the contract.

- `memory://` — in process, for tests and the rule tester
- `sqlite:///ABS/PATH/bus.db` (or `sqlite://REL/PATH`) — the embedded durable log;
  `?synchronous=full|normal` (default full)
Both take `?dedup_window=SECONDS` (default 86400): how long a (source, id) counts as a duplicate.
- `nats://HOST:PORT` — NATS JetStream (optional extra: `pip install 'ondo[nats]'`);
  `?max_age=7d&max_bytes=10GiB&replicas=1&timeout=5s` (see nats_options.py)
`cluster` (default `ondo`) prefixes a NATS bus's stream, offsets and subjects; the embedded
backends ignore it (their file is already the cluster's own).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from ondo.backends.bus.base import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_NAMESPACE,
    AppendResult,
    Bus,
    BusCounters,
    EventLookup,
    ReplayTarget,
    StoredEvent,
)
from ondo.errors import ConfigError
from ondo.events import DEFAULT_MAX_EVENT_BYTES

__all__ = [
    "DEFAULT_NAMESPACE",
    "AppendResult",
    "Bus",
    "BusCounters",
    "EventLookup",
    "ReplayTarget",
    "StoredEvent",
    "open_bus",
]

SCHEMES = ("memory", "sqlite", "nats")


def open_bus(
    url: str,
    *,
    clock: Callable[[], float] = time.time,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
    cluster: str = "ondo",
    wal_limit_bytes: int | None = None,
    index: EventLookup | None = None,
) -> Bus:
    """Open the bus named by `url`; an unknown scheme or option raises ConfigError.
    `wal_limit_bytes` bounds the SQLite log's write-ahead log (other backends have none).
    `index` (the store's event index) serves a NATS bus's lookups by id; the embedded backends
    index their own and ignore it. A NATS bus without one scans for lookups (bounded)."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    common: dict[str, Any] = {
        "clock": clock,
        "max_event_bytes": max_event_bytes,
        "dedup_window_s": _seconds(url, options.pop("dedup_window", None), dedup_window_s),
    }
    if scheme == "memory":
        from ondo.backends.bus.memory import MemoryBus

        _no_more_options(url, options)
        return MemoryBus(**common)
    if scheme == "sqlite":
        if wal_limit_bytes is not None:
            common["wal_limit_bytes"] = wal_limit_bytes
        return _open_sqlite(url, rest, options, common)
    if scheme == "nats":
        module = _optional_backend("nats", "nats")
        bus: Bus = module.open_bus(url, options=options, cluster=cluster, index=index, **common)
        return bus
    raise ConfigError(
        f"unknown bus URL {url!r}: the scheme must be one of "
        + ", ".join(f"{s}://" for s in SCHEMES)
        + " (e.g. sqlite:////var/lib/ondo/bus.db or memory://)"
    )


def _open_sqlite(url: str, path_part: str, options: dict[str, str], common: dict[str, Any]) -> Bus:
    from ondo.backends.bus.sqlite import SqliteBus

    if not path_part:
        raise ConfigError(f"bus URL {url!r} names no file: use sqlite:////ABSOLUTE/PATH/bus.db")
    path = "/" + path_part.lstrip("/") if path_part.startswith("/") else path_part
    synchronous = options.pop("synchronous", "full").lower()
    _no_more_options(url, options)
    return SqliteBus(path, synchronous=synchronous, **common)


def _seconds(url: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"bus URL {url!r}: dedup_window must be a number of seconds ≥ 0")
    return value


def _no_more_options(url: str, options: dict[str, str]) -> None:
    if options:
        raise ConfigError(
            f"bus URL {url!r} has unknown option(s) {sorted(options)}; "
            "known: dedup_window (any bus), synchronous (sqlite), "
            "max_age, max_bytes, replicas, timeout (nats)"
        )


def _optional_backend(name: str, extra: str) -> Any:
    try:
        return importlib.import_module(f"ondo.backends.bus.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ondo.backends.bus.{name}":
            raise ConfigError(
                f"the {name} bus backend is not part of this version of ondo; "
                "use sqlite:// (the default) or memory://"
            ) from None
        raise ConfigError(
            f"the {name} bus backend needs the package {exc.name!r}: "
            f"run `pip install 'ondo[{extra}]'`"
        ) from None
