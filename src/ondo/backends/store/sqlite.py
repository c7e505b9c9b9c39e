"""The embedded store: one SQLite database in WAL mode, shared by the repositories of every domain.

Calls run on the event loop's thread: each statement is sub-millisecond in WAL mode, and a single
writer connection keeps transactions serial without locks. `synchronous=NORMAL` in WAL mode makes a
commit survive `kill -9` of any process (the WAL lives in the OS page cache); `durability="full"`
also survives power loss at the cost of an fsync per commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ondo.errors import ConfigError

Migration = tuple[str, str]  # (unique name, SQL script)


class SqliteDatabase:
    """One connection, schema migrations by name, and a transaction context manager."""

    def __init__(self, path: Path | str, *, durability: str = "normal") -> None:
        if durability not in ("normal", "full"):
            raise ConfigError(f"store durability must be 'normal' or 'full', got {durability!r}")
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={durability.upper()}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
        )

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply each migration not applied yet, in order, each in its own transaction."""
        done = {r[0] for r in self._conn.execute("SELECT name FROM schema_migrations")}
        for name, script in migrations:
            if name in done:
                continue
            with self.transaction() as conn:
                for statement in _split_statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, strftime('%s','now'))", (name,)
                )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back if the block raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            return fn(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _split_statements(script: str) -> list[str]:
    """Split a migration script on ';' at statement ends (our scripts hold no ';' in literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
