"""Keeping a SQLite write-ahead log bounded under any load.

A PASSIVE checkpoint copies what it can without waiting for anyone, but the WAL file only starts
over when a writer begins while everything in it has been copied and no reader still uses it.
Under a steady stream of commits that moment never comes: every checkpoint is a few frames
behind, so the file grows for as long as the writes go on (1 to 2.5 GB were measured) and, without
`journal_size_limit`, never shrinks afterwards.

So: `journal_size_limit` on every connection (a WAL that starts over is cut back to the limit),
and once the file is over the limit a TRUNCATE checkpoint, which takes the write lock, waits
(through the busy timeout) for readers to leave the WAL, copies the little a PASSIVE one left,
and truncates the file to zero bytes. Writers wait for it meanwhile: a few milliseconds, since
the PASSIVE checkpoints before it did almost all of the copying. It runs on the writer's own
connection between two of its transactions (from another connection it would wait for the write
lock, which a busy writer takes again the moment it lets go), while the process's own readers
are held back (a reader reading back to back would keep it waiting: each new read takes up the
WAL again before the checkpoint can claim it).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

WAL_LIMIT_BYTES = 64 * 1024 * 1024
# A reader that never lets go of the WAL (another process reading back to back) must not stall
# the writer for long: the truncation gives up after this and is tried again a moment later.
TRUNCATE_WAIT_S = 0.25


def wal_path(db_path: Path | str) -> Path:
    return Path(f"{db_path}-wal")


def wal_bytes(db_path: Path | str) -> int:
    """The size of the database's WAL file (0 when there is none)."""
    try:
        return os.stat(wal_path(db_path)).st_size
    except FileNotFoundError:
        return 0


def limit_journal(conn: sqlite3.Connection, limit_bytes: int) -> None:
    """A WAL that starts over is truncated back to `limit_bytes` (per connection)."""
    conn.execute(f"PRAGMA journal_size_limit={int(limit_bytes)}").fetchall()


def truncate_if_over(
    conn: sqlite3.Connection, db_path: Path | str, limit_bytes: int, wait_s: float = TRUNCATE_WAIT_S
) -> bool:
    """A TRUNCATE checkpoint if the WAL is over `limit_bytes`, waiting at most `wait_s` for
    readers to leave it (the connection's own busy timeout is restored after); True when the
    WAL was truncated. `conn` must hold no transaction."""
    if wal_bytes(db_path) <= limit_bytes:
        return False
    (usual_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute(f"PRAGMA busy_timeout={int(wait_s * 1000)}").fetchall()
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(usual_ms)}").fetchall()
    return not busy
