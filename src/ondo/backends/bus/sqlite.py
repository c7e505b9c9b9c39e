"""The embedded durable bus: an append-only SQLite log in WAL mode with group commit.

One writer thread owns the write connection. `append` and `ack` put a job on its queue and await
a future; the thread takes every job waiting (up to `max_batch_events`), writes them all in one
transaction, commits, and only then resolves each future on its own loop. While one commit
syncs, the next batch gathers, so N concurrent appends cost far fewer than N commits.

Durability: `synchronous=FULL` (the default) fsyncs the WAL at every commit, so an acknowledged
append survives `kill -9` of any process and power loss; one fsync covers a whole batch.
`synchronous=NORMAL` (`?synchronous=normal`) still survives `kill -9` of any process (the WAL
write has reached the OS before the commit returns) but not an OS crash or power loss.

Readers use their own connection; WAL lets them read while the writer commits. The writer
checkpoints as SQLite does by default (PASSIVE, every 1000 pages), and TRUNCATEs the WAL once it
is over `wal_limit_bytes`, so the file stays bounded while readers come and go (ondo.backends.wal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ondo.backends import wal
from ondo.backends.bus.base import (
    DEFAULT_DEDUP_WINDOW_S,
    DEFAULT_NAMESPACE,
    DEFAULT_PRUNE_LIMIT,
    AppendResult,
    BusCounters,
    StoredEvent,
)
from ondo.backends.bus.waiters import Waiters
from ondo.errors import BusClosed, BusError, ConfigError
from ondo.events import DEFAULT_MAX_EVENT_BYTES, CloudEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    received_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (id);
CREATE INDEX IF NOT EXISTS events_by_received ON events (received_at);
CREATE TABLE IF NOT EXISTS dedup (
    namespace TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (namespace, source, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_received ON dedup (received_at);
CREATE TABLE IF NOT EXISTS consumers (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
"""
COLUMNS = "seq, namespace, received_at, body, type"
DEDUP_PRUNE_EVERY_S = 1.0
# Expired dedup keys one commit deletes at most, oldest first; after a full batch the next commit
# deletes more at once, so the pruning keeps up with any ingest rate in small steps.
DEDUP_PRUNE_LIMIT = 2000
WAL_CHECK_EVERY_S = 0.2
SYNCHRONOUS_MODES = ("full", "normal")


@dataclass
class _Job:
    """A write for the writer thread; `apply` runs inside its transaction."""

    future: asyncio.Future[Any]
    weight: int = field(default=1, init=False)

    def apply(self, bus: SqliteBus, conn: sqlite3.Connection, now: float) -> Any:
        raise NotImplementedError


@dataclass
class _Append(_Job):
    events: Sequence[CloudEvent]
    namespace: str

    def __post_init__(self) -> None:
        self.weight = len(self.events)

    def apply(self, bus: SqliteBus, conn: sqlite3.Connection, now: float) -> list[AppendResult]:
        return bus._write_events(conn, self.events, self.namespace, now)


@dataclass
class _Ack(_Job):
    consumer: str
    seq: int

    def apply(self, bus: SqliteBus, conn: sqlite3.Connection, now: float) -> None:
        conn.execute(
            "INSERT INTO consumers (name, seq, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            (self.consumer, self.seq, now),
        )


@dataclass
class _Prune(_Job):
    before: float
    limit: int

    def apply(self, bus: SqliteBus, conn: sqlite3.Connection, now: float) -> int:
        # The oldest first, through events_by_received: a short transaction whatever the backlog.
        return conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events INDEXED BY events_by_received"
            " WHERE received_at < ? ORDER BY received_at LIMIT ?)",
            (self.before, max(0, self.limit)),
        ).rowcount


class SqliteBus:
    indexed_by_store = False  # it indexes its own lookups

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "full",
        dedup_window_s: float = DEFAULT_DEDUP_WINDOW_S,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_events: int = 2000,
        clock: Callable[[], float] = time.time,
        wal_limit_bytes: int = wal.WAL_LIMIT_BYTES,
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(
                f"bus option synchronous must be 'full' or 'normal', got {synchronous!r}"
            )
        self.path = Path(path)
        self.counters = BusCounters()
        self.dedup_window_s = dedup_window_s
        self.max_event_bytes = max_event_bytes
        self.max_batch_events = max_batch_events
        self._clock = clock
        self.wal_limit_bytes = wal_limit_bytes
        self._wal_checked_at = 0.0
        self._writer = self._connect(synchronous)
        self._writer.executescript(SCHEMA)
        self._reader = self._connect(synchronous)
        self._read_lock = threading.Lock()
        self._last_seq = self._stored_last_seq()
        self._last_dedup_prune = 0.0
        self._waiters = Waiters()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._run_writer, name="ondo-bus-writer", daemon=True
        )
        self._thread.start()

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            wal.limit_journal(conn, self.wal_limit_bytes)
        except (OSError, sqlite3.Error) as exc:
            raise BusError(f"cannot open the event log {self.path}: {exc}") from exc
        return conn

    # --- writes: queued for the writer thread ---------------------------------------------

    async def append(
        self, events: Sequence[CloudEvent], namespace: str = DEFAULT_NAMESPACE
    ) -> list[AppendResult]:
        for event in events:
            event.check_size(self.max_event_bytes)
        if not events:
            return []
        results: list[AppendResult] = await self._submit(
            lambda future: _Append(future, list(events), namespace)
        )
        return results

    async def ack(self, consumer: str, seq: int) -> None:
        await self._submit(lambda future: _Ack(future, consumer, seq))

    async def prune(self, before: datetime, limit: int = DEFAULT_PRUNE_LIMIT) -> int:
        removed: int = await self._submit(lambda future: _Prune(future, before.timestamp(), limit))
        return removed

    async def _submit(self, make: Callable[[asyncio.Future[Any]], _Job]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._submit_lock:
            self._check_open()
            self._queue.put(make(future))
        return await future

    def _run_writer(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, weight = [first], first.weight
            while weight < self.max_batch_events:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
                weight += job.weight
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        conn, now = self._writer, self._clock()
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [job.apply(self, conn, now) for job in batch]
            self._maybe_prune_dedup(conn, now)
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = BusError(f"writing to the event log {self.path} failed: {exc}")
            for job in batch:
                _settle(job.future, error=error)
            return
        self.counters.transactions += 1
        self.counters.append_calls += sum(isinstance(job, _Append) for job in batch)
        self._last_seq = self._stored_last_seq(conn)
        self._waiters.notify(self._last_seq)
        for job, outcome in zip(batch, outcomes, strict=True):
            _settle(job.future, result=outcome)
        self._bound_wal()

    def _bound_wal(self) -> None:
        """Now and then, after a commit: TRUNCATE the WAL if it is over the limit."""
        now = time.monotonic()
        if now - self._wal_checked_at < WAL_CHECK_EVERY_S:
            return
        self._wal_checked_at = now
        if wal.wal_bytes(self.path) <= self.wal_limit_bytes:
            return
        # Our reader waits meanwhile: read back to back, it could keep the WAL from ever being
        # free (a few milliseconds: PASSIVE checkpoints have copied nearly all of it).
        with self._read_lock, contextlib.suppress(sqlite3.Error):  # busy: try again later
            wal.truncate_if_over(self._writer, self.path, self.wal_limit_bytes)

    def _write_events(
        self, conn: sqlite3.Connection, events: Sequence[CloudEvent], namespace: str, now: float
    ) -> list[AppendResult]:
        """One job's events in three statements whatever their number (a lookup of the earlier
        copies, then one executemany per table): per-event statements held the GIL for ~15 µs
        each, which the event loop's thread then waited for."""
        earlier = self._earlier(conn, events, namespace, now - self.dedup_window_s)
        seq = self._next_seq(conn)
        results: list[AppendResult] = []
        rows: list[tuple[Any, ...]] = []
        for event in events:
            key = (event.source, event.id)
            if key in earlier:  # seen within the window, or earlier in this very batch
                self.counters.duplicates += 1
                results.append(AppendResult(earlier[key], True))
                continue
            earlier[key] = seq
            rows.append((seq, namespace, event.source, event.id, event.type, now, event.encoded))
            results.append(AppendResult(seq, False))
            seq += 1
        conn.executemany(
            "INSERT INTO events (seq, namespace, source, id, type, received_at, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT OR REPLACE INTO dedup (namespace, source, id, seq, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(namespace, row[2], row[3], row[0], now) for row in rows],
        )
        self.counters.events_written += len(rows)
        return results

    def _earlier(
        self, conn: sqlite3.Connection, events: Sequence[CloudEvent], namespace: str, since: float
    ) -> dict[tuple[str, str], int | None]:
        """(source, id) -> seq (None once pruned from the log) of the events already appended
        within the dedup window, looked up per source with the ids as one JSON array."""
        by_source: dict[str, list[str]] = {}
        for event in events:
            by_source.setdefault(event.source, []).append(event.id)
        found: dict[tuple[str, str], int | None] = {}
        for source, ids in by_source.items():
            rows = conn.execute(
                "SELECT d.id, e.seq FROM dedup d LEFT JOIN events e ON e.seq = d.seq"
                " WHERE d.namespace = ? AND d.source = ?"
                " AND d.id IN (SELECT value FROM json_each(?)) AND d.received_at >= ?",
                (namespace, source, json.dumps(ids), since),
            )
            found.update(((source, id), seq) for id, seq in rows)
        return found

    def _next_seq(self, conn: sqlite3.Connection) -> int:
        """The seq AUTOINCREMENT would give the next row (above any seq ever used): the writer
        holds the write lock, so the rows it inserts take the following ones in order."""
        row = conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
            " coalesce((SELECT max(seq) FROM events), 0))"
        ).fetchone()
        return int(row[0]) + 1

    def _maybe_prune_dedup(self, conn: sqlite3.Connection, now: float) -> None:
        if now - self._last_dedup_prune < DEDUP_PRUNE_EVERY_S:
            return
        removed = conn.execute(
            "DELETE FROM dedup WHERE (namespace, source, id) IN (SELECT namespace, source, id"
            " FROM dedup INDEXED BY dedup_by_received WHERE received_at < ?"
            " ORDER BY received_at LIMIT ?)",
            (now - self.dedup_window_s, DEDUP_PRUNE_LIMIT),
        ).rowcount
        self._last_dedup_prune = now if removed < DEDUP_PRUNE_LIMIT else 0.0

    # --- reads: on the caller's thread, through the reader connection ----------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._check_open()
        with self._read_lock:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BusError(f"reading the event log {self.path} failed: {exc}") from exc

    def _stored_last_seq(self, conn: sqlite3.Connection | None = None) -> int:
        row = (
            (conn if conn is not None else self._writer)
            .execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def _events(self, where: str, params: Sequence[Any], tail: str = "") -> list[StoredEvent]:
        rows = self._query(f"SELECT {COLUMNS} FROM events WHERE {where} {tail}", params)
        return [StoredEvent.from_body(r[0], r[3], r[4], r[2], r[1]) for r in rows]

    async def read(self, after_seq: int, limit: int = 500) -> list[StoredEvent]:
        return self._events("seq > ?", (after_seq,), _page(limit))

    async def wait(self, after_seq: int, timeout: float) -> None:
        self._check_open()
        await self._waiters.wait(after_seq, timeout, self._current_seq)

    def _current_seq(self) -> int:
        # Another process may append to the same file: look at the log, not only our counter.
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return max(self._last_seq, int(rows[0][0]) if rows else 0)

    async def last_seq(self) -> int:
        return self._current_seq()

    async def committed(self, consumer: str) -> int:
        rows = self._query("SELECT seq FROM consumers WHERE name = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    async def get(
        self, source: str, id: str, namespace: str = DEFAULT_NAMESPACE
    ) -> StoredEvent | None:
        found = self._events(
            "id = ? AND source = ? AND namespace = ?", (id, source, namespace), _page(1)
        )
        return found[0] if found else None

    async def by_id(self, id: str, namespace: str | None = None) -> list[StoredEvent]:
        where, params = _filters(["id = ?"], [id], None, namespace)
        return self._events(where, params, "ORDER BY seq")

    async def since(
        self,
        time: datetime,
        type_glob: str | None = None,
        *,
        after_seq: int = 0,
        limit: int = 1000,
        namespace: str | None = None,
    ) -> list[StoredEvent]:
        where, params = _filters(
            ["received_at >= ?", "seq > ?"], [time.timestamp(), after_seq], type_glob, namespace
        )
        return self._events(where, [*params, limit], "ORDER BY seq LIMIT ?")

    async def tail(
        self, limit: int, type_glob: str | None = None, namespace: str | None = None
    ) -> list[StoredEvent]:
        where, params = _filters([], [], type_glob, namespace)
        found = self._events(where, [*params, limit], "ORDER BY seq DESC LIMIT ?")
        found.reverse()
        return found

    # --- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._waiters.close()
        with self._read_lock:
            self._reader.close()
        self._writer.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed(f"the event log {self.path} is closed (the platform is shutting down)")


def _page(limit: int) -> str:
    return f"ORDER BY seq LIMIT {max(0, int(limit))}"


def _filters(
    clauses: list[str], params: list[Any], type_glob: str | None, namespace: str | None
) -> tuple[str, list[Any]]:
    if type_glob is not None:
        clauses, params = [*clauses, "type GLOB ?"], [*params, type_glob]
    if namespace is not None:
        clauses, params = [*clauses, "namespace = ?"], [*params, namespace]
    return (" AND ".join(clauses) or "1"), params


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: Exception | None = None
) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled; the write stands regardless
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the caller's loop is gone
        future.get_loop().call_soon_threadsafe(settle)
