"""The store: `open_store(url)` picks an engine by URL scheme; see base.py for the contract.

- `sqlite:///ABS/PATH/ondo.db` (or `sqlite://REL/PATH`) — the embedded default
- `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgres://`) — PostgreSQL, optional
  extra: `pip install 'ondo[postgres]'`; the cluster name is the schema
"""

from __future__ import annotations

import importlib
from typing import Any

from ondo.backends.store.base import Database, Repositories
from ondo.backends.store.store import Store
from ondo.backends.wal import WAL_LIMIT_BYTES
from ondo.errors import ConfigError

__all__ = ["Database", "Repositories", "Store", "open_store"]

SCHEMES = ("sqlite", "postgresql", "postgres")


def open_store(
    url: str,
    *,
    cluster: str = "ondo",
    durability: str = "normal",
    wal_limit_bytes: int = WAL_LIMIT_BYTES,
) -> Store:
    """The store named by `url` (not yet connected for PostgreSQL: `await store.open()`).
    `wal_limit_bytes` bounds SQLite's write-ahead log (see ondo.backends.wal)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"store URL {url!r} has no scheme: use {_examples()}")
    if scheme == "sqlite":
        from ondo.backends.store.sqlite.engine import SqliteEngine

        path = rest.partition("?")[0]
        if not path:
            raise ConfigError(f"store URL {url!r} names no file: use sqlite:////ABS/PATH/ondo.db")
        engine = SqliteEngine(
            path, cluster=cluster, durability=durability, wal_limit_bytes=wal_limit_bytes
        )
        return Store(engine)
    if scheme in ("postgresql", "postgres"):
        module = _optional("postgres", "asyncpg")
        database: Database = module.PostgresEngine(url, cluster=cluster)
        return Store(database)
    raise ConfigError(f"unknown store URL {url!r}: use {_examples()}")


def _examples() -> str:
    return "sqlite:////var/lib/ondo/ondo.db or postgresql://postgres@127.0.0.1:5432/ondo"


def _optional(name: str, package: str) -> Any:
    try:
        return importlib.import_module(f"ondo.backends.store.{name}.engine")
    except ModuleNotFoundError as exc:
        if exc.name != package:
            raise
        raise ConfigError(
            f"the {name} store needs the package {package!r}: run `pip install 'ondo[{name}]'`"
        ) from None
