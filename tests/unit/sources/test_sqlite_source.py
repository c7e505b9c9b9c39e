"""`kind: sqlite` on real SQLite files: triggers, the outbox, polling, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from ondo.sources.changes import TableSettings
from ondo.sources.sqlite import SqliteOutbox
from tests.unit.sources.cdc_harness import Harness

MARKS = (
    "CREATE TABLE marks (id INTEGER PRIMARY KEY, pupil TEXT NOT NULL, mark INTEGER,"
    " comment TEXT, photo BLOB)"
)


def make_db(path: Path, *statements: str) -> Path:
    write(path, MARKS, *statements)
    return path


def write(path: Path, *statements: str, params: Any = ()) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement, params) if params else conn.execute(statement)
    conn.close()


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def settings(path: str, **tables: Any) -> dict[str, Any]:
    return {"path": path, "tables": tables or {"marks": None}, "poll": "100ms"}


def test_insert_update_delete_become_row_events_in_order(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    db = make_db(tmp_path / "app" / "school.db")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            # relative to the app directory (the harness's root)
            await h.deploy("school", "sqlite", settings("app/school.db"))
            await h.connected("school")
            write(db, "INSERT INTO marks VALUES (1, 'ada', 5, 'good', x'00ff')")
            write(db, "UPDATE marks SET mark = 6 WHERE id = 1")
            write(db, "UPDATE marks SET mark = 6 WHERE id = 1")  # nothing changed: no event
            write(db, "DELETE FROM marks WHERE id = 1")
            events = await h.wait_events(3)
            await asyncio.sleep(0.3)
            events = await h.events()
        assert [e.type for e in events] == ["db.row.inserted", "db.row.updated", "db.row.deleted"]
        assert [e.subject for e in events] == ["marks/1"] * 3 and events[0].source == "school"
        inserted, updated, deleted = (e.data for e in events)
        row = {"id": 1, "pupil": "ada", "mark": 5, "comment": "good", "photo": "\\x00ff"}
        assert inserted["new"] == row and inserted["old"] is None
        assert inserted["changed"] == ["id", "pupil", "mark", "comment", "photo"]
        assert updated["old"] == row and updated["new"] == {**row, "mark": 6}
        assert updated["changed"] == ["mark"] and updated["table"] == "marks"
        assert deleted["old"] == {**row, "mark": 6} and deleted["new"] is None
        assert inserted["user"] is None  # SQLite has no database users
        assert not rows(db, "SELECT * FROM ondo_outbox")

    asyncio.run(body())


def test_excluded_columns_never_reach_the_outbox_and_unwatched_updates_write_nothing(
    tmp_path: Path,
) -> None:
    db = make_db(tmp_path / "school.db", "INSERT INTO marks VALUES (1, 'ada', 5, 'secret', NULL)")
    spec = {"marks": {"columns": ["mark"], "exclude": ["comment"], "operations": ["update"]}}

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("school", "sqlite", settings(str(db), **spec))
            await h.connected("school")
            await h.stop()
            write(
                db,
                "UPDATE marks SET comment = 'still secret'",
                "UPDATE marks SET pupil = 'bob'",
                "INSERT INTO marks VALUES (2, 'eve', 3, 'x', NULL)",
                "UPDATE marks SET mark = 4, comment = 'hidden' WHERE id = 1",
            )
            outbox = rows(db, "SELECT old, new FROM ondo_outbox")
            assert len(outbox) == 1
            assert "secret" not in outbox[0][0] and "hidden" not in outbox[0][1]
            await h.start()
            await h.wait_events(1)
            await asyncio.sleep(0.3)
            events = await h.events()
        assert len(events) == 1
        assert events[0].data["new"] == {"id": 1, "pupil": "bob", "mark": 4, "photo": None}

    asyncio.run(body())


def test_changes_made_while_ondo_is_stopped_arrive_once_each_after_it_starts(
    tmp_path: Path,
) -> None:
    db = make_db(tmp_path / "school.db")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("school", "sqlite", settings(str(db)))
            await h.connected("school")
            write(db, "INSERT INTO marks VALUES (1, 'ada', 5, NULL, NULL)")
            await h.wait_events(1)
            await h.stop()
            with sqlite3.connect(db) as conn:
                conn.executemany(
                    "INSERT INTO marks VALUES (?, ?, 1, NULL, NULL)",
                    [(n, f"p{n}") for n in range(2, 1202)],
                )
            conn.close()
            await h.start()
            await h.wait_events(1201)
            await h.until(lambda: not rows(db, "SELECT 1 FROM ondo_outbox"))
            await asyncio.sleep(0.3)
            events = await h.events()
        assert len(events) == 1201 and len({e.id for e in events}) == 1201
        assert [e.data["new"]["id"] for e in events] == list(range(1, 1202))

    asyncio.run(body())


def test_rows_read_again_after_a_crash_before_delete_are_dropped_by_the_bus(
    tmp_path: Path,
) -> None:
    db = make_db(tmp_path / "school.db")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("school", "sqlite", settings(str(db)))
            await h.connected("school")
            write(
                db,
                "CREATE TABLE kept AS SELECT * FROM ondo_outbox WHERE 0",
                "CREATE TRIGGER keep BEFORE DELETE ON ondo_outbox BEGIN"
                " INSERT INTO kept SELECT * FROM ondo_outbox WHERE id = OLD.id; END",
                "INSERT INTO marks VALUES (1, 'a', 1, NULL, NULL), (2, 'b', 2, NULL, NULL)",
            )
            first = await h.wait_events(2)
            await h.stop()
            write(db, "DROP TRIGGER keep", "INSERT INTO ondo_outbox SELECT * FROM kept")
            await h.start()
            await h.until(lambda: not rows(db, "SELECT 1 FROM ondo_outbox"))
            again = await h.events()
            assert h.status("school").events == 0
        assert [e.id for e in again] == [e.id for e in first]

    asyncio.run(body())


def test_a_missing_file_table_or_column_is_a_visible_error_naming_it(tmp_path: Path) -> None:
    db = make_db(tmp_path / "school.db")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("nofile", "sqlite", settings(str(tmp_path / "nothere.db")))
            await h.deploy("notable", "sqlite", settings(str(db), grades=None))
            await h.deploy("nocolumn", "sqlite", settings(str(db), marks={"exclude": ["grade"]}))
            no_file = await h.until(lambda: h.status("nofile").last_error)
            no_table = await h.until(lambda: h.status("notable").last_error)
            no_column = await h.until(lambda: h.status("nocolumn").last_error)
            assert h.status("nocolumn").state == "retrying"
        assert "nothere.db does not exist" in no_file
        assert not (tmp_path / "nothere.db").exists()  # never created empty
        assert "table 'grades' does not exist" in no_table
        assert "column 'grade' does not exist in table 'marks'" in no_column
        assert "pupil" in no_column
        assert rows(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == []

    asyncio.run(body())


def test_install_is_idempotent_and_follows_the_settings(tmp_path: Path) -> None:
    db = make_db(tmp_path / "school.db", "CREATE TABLE pupils (id INTEGER PRIMARY KEY, name TEXT)")

    async def install(*tables: TableSettings) -> list[tuple[Any, ...]]:
        outbox = SqliteOutbox(db, "ondo_outbox")
        try:
            await outbox.open()
            await outbox.call(outbox.install, list(tables))
        finally:
            await outbox.close()
        return rows(db, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY 1")

    async def body() -> None:
        both = await install(TableSettings("marks"), TableSettings("pupils"))
        assert [name for name, _ in both] == [
            f"ondo_outbox_capture_{op}_{table}"
            for op in ("delete", "insert", "update")
            for table in ("marks", "pupils")
        ]
        version = rows(db, "PRAGMA schema_version")
        assert await install(TableSettings("marks"), TableSettings("pupils")) == both
        assert rows(db, "PRAGMA schema_version") == version  # nothing rewritten
        fewer = await install(TableSettings("marks", operations=("update",)))
        assert [name for name, _ in fewer] == ["ondo_outbox_capture_update_marks"]

    asyncio.run(body())


def test_a_table_of_the_outbox_name_that_is_not_an_outbox_is_refused(tmp_path: Path) -> None:
    db = make_db(tmp_path / "school.db", "CREATE TABLE ondo_outbox (id INTEGER)")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("school", "sqlite", settings(str(db)))
            error = await h.until(lambda: h.status("school").last_error)
        assert "is not an ondo outbox" in error

    asyncio.run(body())


def test_a_row_too_large_for_an_event_still_fires_without_its_values(tmp_path: Path) -> None:
    db = make_db(tmp_path / "school.db")

    async def body() -> None:
        async with Harness(tmp_path) as h:
            await h.deploy("school", "sqlite", settings(str(db)))
            await h.connected("school")
            write(db, "INSERT INTO marks VALUES (1, 'a', 1, NULL, NULL)")
            write(db, "INSERT INTO marks VALUES (2, 'b', 2, ?, NULL)", params=("x" * 300_000,))
            write(db, "INSERT INTO marks VALUES (3, 'c', 3, NULL, NULL)")
            events = await h.wait_events(3)
            status = h.status("school")
        assert [e.subject for e in events] == ["marks/1", "marks/2", "marks/3"]
        big = events[1].data
        assert big["too_large"] is True and big["new"] is None and "comment" in big["changed"]
        assert status.errors == 1 and status.last_error is not None
        assert "outbox id" in status.last_error and "without old and new" in status.last_error

    asyncio.run(body())
