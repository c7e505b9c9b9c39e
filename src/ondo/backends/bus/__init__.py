"""The event bus: `open_bus(url)` picks a backend by URL scheme; see base.py for the contract.

- `memory://` — in process, for tests and the rule tester
- `sqlite:///ABS/PATH/bus.db` (or `sqlite://REL/PATH`) — the embedded durable log;
  options as query parameters: `?synchronous=full|normal`
- `nats://HOST:PORT` — NATS JetStream (optional extra: `pip install 'ondo[nats]'`)
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
) -> Bus:
    """Open the bus named by `url`; an unknown scheme or option raises ConfigError."""
    scheme, _, rest = url.partition("://")
    common: dict[str, Any] = {
        "clock": clock,
        "max_event_bytes": max_event_bytes,
        "dedup_window_s": dedup_window_s,
    }
    if scheme == "memory":
        from ondo.backends.bus.memory import MemoryBus

        return MemoryBus(**common)
    if scheme == "sqlite":
        return _open_sqlite(url, rest, common)
    if scheme == "nats":
        module = _optional_backend("nats", "nats")
        bus: Bus = module.open_bus(url, **common)
        return bus
    raise ConfigError(
        f"unknown bus URL {url!r}: the scheme must be one of "
        + ", ".join(f"{s}://" for s in SCHEMES)
        + " (e.g. sqlite:////var/lib/ondo/bus.db or memory://)"
    )


def _open_sqlite(url: str, rest: str, common: dict[str, Any]) -> Bus:
    from ondo.backends.bus.sqlite import SqliteBus

    path_part, _, query = rest.partition("?")
    if not path_part:
        raise ConfigError(f"bus URL {url!r} names no file: use sqlite:////ABSOLUTE/PATH/bus.db")
    path = "/" + path_part.lstrip("/") if path_part.startswith("/") else path_part
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ConfigError(
            f"bus URL {url!r} has unknown option(s) {sorted(unknown)}; known: synchronous"
        )
    return SqliteBus(path, synchronous=options.get("synchronous", "full").lower(), **common)


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
