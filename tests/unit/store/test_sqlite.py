"""The embedded store's connection: background WAL checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ondo.backends.store.sqlite import SqliteDatabase


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_background_checkpoints_copy_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "ondo.db"
    db = SqliteDatabase(path, background_checkpoint=True)
    try:
        assert db.query_one("PRAGMA wal_autocheckpoint")[0] == 0  # type: ignore[index]
        db.execute("CREATE TABLE t (v BLOB)")
        with db.transaction() as conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 4000,) for _ in range(200)])
        # Nobody on this thread checkpoints: the rows reach the main file by the thread alone.
        assert _wait_until(lambda: path.stat().st_size > 200 * 4000)
        assert db.query_one("SELECT COUNT(*) FROM t")[0] == 200  # type: ignore[index]
    finally:
        db.close()
    reopened = SqliteDatabase(path)
    assert reopened.query_one("SELECT COUNT(*) FROM t")[0] == 200  # type: ignore[index]
    reopened.close()


def test_without_the_option_sqlite_checkpoints_as_usual(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "ondo.db")
    assert db.query_one("PRAGMA wal_autocheckpoint")[0] == 1000  # type: ignore[index]
    db.close()
