"""One SQLite database in WAL mode, shared by the repositories of every domain (engine.py wraps it).

Calls run on the event loop's thread: each statement is sub-millisecond in WAL mode, and a single
writer connection keeps transactions serial without locks. `synchronous=NORMAL` in WAL mode makes a
commit survive `kill -9` of any process (the WAL lives in the OS page cache); `durability="full"`
also survives power loss at the cost of an fsync per commit.

With `background_checkpoint`, copying the WAL back into the database file (SQLite's checkpoint,
which the committing connection otherwise does every 1000 pages, with its fsyncs) happens on a
thread of its own, so no statement on the loop's thread pays for it. Commits are unchanged. The
WAL stays under `wal_limit_bytes` whatever the load (see ondo.backends.wal).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ondo.backends import wal
from ondo.errors import ConfigError

Migration = tuple[str, str]  # (unique name, SQL script)
CHECKPOINT_EVERY_S = 0.2


class SqliteDatabase:
    """One connection, schema migrations by name, and a transaction context manager."""

    def __init__(
        self,
        path: Path | str,
        *,
        durability: str = "normal",
        background_checkpoint: bool = False,
        wal_limit_bytes: int = wal.WAL_LIMIT_BYTES,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ConfigError(f"store durability must be 'normal' or 'full', got {durability!r}")
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._async_open = False
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={durability.upper()}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        wal.limit_journal(self._conn, wal_limit_bytes)
        self._wal_limit_bytes = wal_limit_bytes
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
        )
        self._checkpointer: _Checkpointer | None = None
        if background_checkpoint:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(self.path, durability, wal_limit_bytes)

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

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    @contextmanager
    def async_transaction(self) -> Iterator[sqlite3.Connection]:
        """The engine's transaction (the caller holds its asyncio lock); while it is open, a
        synchronous call on this connection would join it, so those raise instead."""
        with self.transaction() as conn:
            self._async_open = True
            try:
                yield conn
            finally:
                self._async_open = False

    def _check_no_async(self) -> None:
        if self._async_open:
            raise RuntimeError(
                "a synchronous store call ran inside an open asynchronous transaction"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back if the block raises."""
        with self._lock:
            self._check_no_async()
            self._bound_wal()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            self._check_no_async()
            self._bound_wal()
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._check_no_async()
            return self._conn.execute(sql, params).fetchall()

    def query_one(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        with self._lock:
            self._check_no_async()
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            self._check_no_async()
            self._bound_wal()
            return fn(self._conn)

    def _bound_wal(self) -> None:
        """Truncate the WAL here, before a write, when the checkpointer found it over the limit.

        The checkpointer cannot do it itself under a steady stream of writes: a TRUNCATE
        checkpoint needs the write lock, which this connection takes again the moment it lets
        go. Done here, it is certain to happen; the writes wait for it (a few milliseconds: the
        PASSIVE checkpoints already copied nearly everything).
        """
        checkpointer = self._checkpointer
        if checkpointer is None or not checkpointer.truncate_due or self._conn.in_transaction:
            return
        checkpointer.truncate_due = False
        wal.truncate_if_over(self._conn, self.path, self._wal_limit_bytes)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._conn.close()  # the last connection to close checkpoints what is left


class _Checkpointer:
    """A thread with its own connection that checkpoints the WAL every CHECKPOINT_EVERY_S
    (PASSIVE), and asks the writer to truncate it (`truncate_due`) once it is over the limit."""

    def __init__(self, path: str, durability: str, wal_limit_bytes: int) -> None:
        self._path, self._limit = path, wal_limit_bytes
        self.truncate_due = False
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA synchronous={durability.upper()}")
        wal.limit_journal(self._conn, wal_limit_bytes)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ondo-store-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.wait(CHECKPOINT_EVERY_S):
                # PASSIVE: copies what it can without waiting for (or blocking) anyone.
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.truncate_due = wal.wal_bytes(self._path) > self._limit
        except sqlite3.Error:  # the file went away: the loop's connection will report it
            pass
        finally:
            self._conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def dump_json(value: Any) -> str | None:
    """A nullable JSON column's text: None stays NULL."""
    return None if value is None else json.dumps(value)


def _split_statements(script: str) -> list[str]:
    """Split a migration script on ';' at statement ends (our scripts hold no ';' in literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
