"""`kind: sqlite` — change capture on chosen tables of a SQLite database file (the embedded
default's counterpart of `kind: postgres`).

On every start, ondo creates the outbox table in the user's file if it is missing and (re)writes
three triggers per watched table (`OUTBOX_capture_insert_TABLE`, …) that copy each inserted,
updated or deleted row into it as JSON, the excluded columns left out and updates of unwatched
columns skipped, all inside the user's own transaction. ondo polls the outbox every `poll` and
drains it in order (changes.py). SQLite triggers name their columns, so a column added to a
watched table is captured from the next start of the source.

```yaml
sources:
  school:
    kind: sqlite
    path: data/school.db          # relative: to the app directory
    tables:
      marks: {columns: [mark], exclude: [comment]}
```
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ondo.errors import ConfigError
from ondo.sources.base import Settings, Where, no_unknown_keys
from ondo.sources.changes import (
    DEFAULT_OUTBOX,
    NO_LAYOUT,
    Layout,
    OutboxRow,
    TableSettings,
    check_columns,
    drain,
    first_outbox_id,
    identifier,
    loads,
    parse_time,
    poll_seconds,
    q,
    tables_of,
    validate_tables,
)

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.sources.base import SourceContext

KEYS = ("path", "tables", "outbox", "poll")
DEFAULT_POLL_S = 1.0
BUSY_TIMEOUT_MS = 10_000  # the user's app may hold the write lock for a while
T = TypeVar("T")


class SqliteKind:
    name = "sqlite"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        raw = settings.get("path")
        if not isinstance(raw, str) or not raw.strip():
            raise at.error(("path",), "path must be the database file to watch: data/app.db")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = at.root / path
        if path.is_dir():
            raise at.error(("path",), f"{path} is a directory; path names the database file")
        return {
            "path": str(path),
            "outbox": identifier(settings.get("outbox", DEFAULT_OUTBOX), at, ("outbox",), "outbox"),
            "poll": poll_seconds(settings, at, DEFAULT_POLL_S),
            "tables": validate_tables(settings.get("tables"), at),
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        spec = source.spec
        outbox = SqliteOutbox(Path(spec["path"]), spec["outbox"])
        try:
            await outbox.open()
            await outbox.call(outbox.install, tables_of(spec))
            ctx.connected(f"{spec['path']}, outbox {spec['outbox']}")
            while True:
                await drain(outbox, ctx)
                await asyncio.sleep(spec["poll"])
        finally:
            await asyncio.shield(outbox.close())


class SqliteOutbox:
    """The outbox table and its triggers in the user's file. Every call to the file runs on one
    thread of its own, in order (sqlite3 blocks)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.table = q(name)
        self.prefix = f"{name}_capture_"
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"ondo-sqlite-{name}")
        self._conn: sqlite3.Connection | None = None
        self._layouts: dict[str, Layout] = {}

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def open(self) -> None:
        self._conn = await self.call(self._connect)

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise ConfigError(
                f"the database file {self.path} does not exist; create it, or fix `path:` in"
                " the source's settings"
            )
        # mode=rw: never create an empty database where the user's should be.
        conn = sqlite3.connect(
            f"{self.path.as_uri()}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self.call(conn.close)
        self._thread.shutdown(wait=False)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the outbox is not open")
        return self._conn

    # --- installing (on the outbox's thread) ----------------------------------------------

    def install(self, tables: Sequence[TableSettings]) -> None:
        """Check the tables and columns, then create the outbox and write the triggers, in one
        transaction: the user's writes see either the old triggers or the new ones."""
        columns = {t.name: self._table_info(t.name) for t in tables}
        where = f"the database {self.path}"
        for table in tables:
            check_columns(table, [c for c, _ in columns[table.name]], where)
        self._layouts = {
            name: Layout(
                [c for c, _ in info], [c for c, pk in sorted(info, key=lambda i: i[1]) if pk]
            )
            for name, info in columns.items()
        }
        wanted = {
            f"{self.prefix}{op}_{t.name}": self._trigger(t, op, [c for c, _ in columns[t.name]])
            for t in tables
            for op in t.operations
        }
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._create_outbox()
            have = dict(
                conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name GLOB ?",
                    (self.prefix + "*",),
                ).fetchall()
            )
            for name, sql in have.items():
                if wanted.get(name) != sql:  # gone from the settings, or changed
                    conn.execute(f"DROP TRIGGER {q(name)}")
            for name, sql in wanted.items():
                if have.get(name) != sql:
                    conn.execute(sql)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _table_info(self, table: str) -> list[tuple[str, int]]:
        """(column, position in the primary key or 0) in table order; empty when no table."""
        rows = self.conn.execute(f"PRAGMA table_info({q(table)})").fetchall()
        return [(str(row[1]), int(row[5])) for row in rows]

    def _create_outbox(self) -> None:
        conn = self.conn
        if self._table_info(self.name):
            if [c for c, _ in self._table_info(self.name)] != OUTBOX_COLUMNS:
                raise ConfigError(
                    f"table {self.name!r} in {self.path} exists and is not an ondo outbox;"
                    " choose another name with `outbox:` in the source's settings"
                )
            return
        conn.execute(
            f"CREATE TABLE {self.table} (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
            " table_name TEXT NOT NULL, operation TEXT NOT NULL, old TEXT, new TEXT)"
        )
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (self.name, first_outbox_id())
        )

    def _trigger(self, table: TableSettings, op: str, columns: list[str]) -> str:
        shown = [c for c in columns if c not in table.exclude]
        old = _json_object("OLD", shown) if op != "insert" else "NULL"
        new = _json_object("NEW", shown) if op != "delete" else "NULL"
        when = ""
        if op == "update":  # only when a watched (or, by default, a shown) column changed
            watched = list(table.columns) or shown
            when = " OR ".join(f"OLD.{q(c)} IS NOT NEW.{q(c)}" for c in watched) or "0"
            when = f" WHEN {when}"
        return (
            f"CREATE TRIGGER {q(self.prefix + op + '_' + table.name)} AFTER {op.upper()}"
            f" ON {q(table.name)}{when} BEGIN"
            f" INSERT INTO {self.table} (at, table_name, operation, old, new) VALUES"
            f" (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), '{table.name}', '{op}', {old}, {new}); END"
        )

    # --- the Outbox protocol (changes.py) -------------------------------------------------

    async def fetch(self, after: int, limit: int) -> list[OutboxRow]:
        rows = await self.call(self._fetch, after, limit)
        return [
            OutboxRow(
                id=row[0],
                at=parse_time(row[1]),
                table=row[2],
                operation=row[3],
                old=loads(row[4]) if row[4] is not None else None,
                new=loads(row[5]) if row[5] is not None else None,
            )
            for row in rows
        ]

    def _fetch(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            f"SELECT id, at, table_name, operation, old, new FROM {self.table}"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()

    async def delete(self, rows: Sequence[OutboxRow]) -> None:
        # SQLite has one writer at a time, so ids are taken in commit order: no row with a lower
        # id can appear after this read, and `id <= last` deletes exactly what was read.
        await self.call(self._delete, rows[-1].id)

    def _delete(self, last: int) -> None:
        self.conn.execute(f"DELETE FROM {self.table} WHERE id <= ?", (last,))

    def layout(self, table: str) -> Layout:
        return self._layouts.get(table, NO_LAYOUT)


OUTBOX_COLUMNS = ["id", "at", "table_name", "operation", "old", "new"]


def _json_object(row: str, columns: list[str]) -> str:
    """A row as JSON; a BLOB (which JSON cannot hold, and which would fail the user's write)
    as text in PostgreSQL's bytea form, `\\x0aff…`."""
    values = ", ".join(
        f"'{c}', CASE typeof({row}.{q(c)}) WHEN 'blob' THEN '\\x' || lower(hex({row}.{q(c)}))"
        f" ELSE {row}.{q(c)} END"
        for c in columns
    )
    return f"json_object({values})"


KIND = SqliteKind()
