"""`kind: postgres` against the real PostgreSQL: triggers, outbox, NOTIFY, drain, restarts.

Each test works in a schema of its own (dropped afterwards); ondo's bus and store are SQLite
files in the test's directory (and the bus NATS JetStream where the bus is the point)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ondo.events import CloudEvent
from tests.services import (
    NATS_URL,
    delete_nats_streams,
    require_nats,
    require_postgres,
    unique_cluster,
)
from tests.unit.sources.cdc_harness import Harness

MARKS = (
    "CREATE TABLE {s}.marks (id int PRIMARY KEY, pupil text NOT NULL, mark int,"
    " comment text, photo bytea)"
)


@pytest.fixture
def schema() -> Iterator[str]:
    url = require_postgres()
    name = unique_cluster("cdc")
    asyncio.run(_sql(url, f"CREATE SCHEMA {name}"))
    yield name
    asyncio.run(_sql(url, f"DROP SCHEMA IF EXISTS {name} CASCADE"))


async def _sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def sql(schema: str, *statements: str) -> None:
    await _sql(require_postgres(), *(s.format(s=schema) for s in statements))


async def fetch(schema: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(require_postgres())
    try:
        return list(await conn.fetch(query.format(s=schema)))
    finally:
        await conn.close()


def settings(schema: str, **tables: Any) -> dict[str, Any]:
    return {
        "url": require_postgres(),
        "schema": schema,
        "tables": tables or {"marks": None},
        "poll": "200ms",
    }


def data(events: list[CloudEvent]) -> list[dict[str, Any]]:
    return [e.data for e in events]


def test_insert_update_delete_become_row_events_in_order(tmp_path: Path, schema: str) -> None:
    async def body() -> None:
        await sql(schema, MARKS)
        async with Harness(tmp_path) as h:
            await h.deploy("school", "postgres", settings(schema))
            await h.connected("school")
            await sql(
                schema,
                "INSERT INTO {s}.marks VALUES (1, 'ada', 5, 'good', '\\x00ff')",
                "UPDATE {s}.marks SET mark = 6 WHERE id = 1",
                "DELETE FROM {s}.marks WHERE id = 1",
            )
            events = await h.wait_events(3)
        assert [e.type for e in events] == ["db.row.inserted", "db.row.updated", "db.row.deleted"]
        assert {e.source for e in events} == {"school"}
        assert [e.subject for e in events] == ["marks/1"] * 3
        inserted, updated, deleted = data(events)
        row = {"id": 1, "pupil": "ada", "mark": 5, "comment": "good", "photo": "\\x00ff"}
        assert inserted["new"] == row and inserted["old"] is None
        assert inserted["changed"] == ["id", "pupil", "mark", "comment", "photo"]
        assert updated["old"] == row and updated["new"] == {**row, "mark": 6}
        assert updated["changed"] == ["mark"]
        assert deleted["old"] == {**row, "mark": 6} and deleted["new"] is None
        assert updated["table"] == "marks" and updated["schema"] == schema
        assert updated["user"] == "postgres" and updated["operation"] == "update"
        assert len({e.id for e in events}) == 3

    asyncio.run(body())


def test_excluded_columns_never_reach_the_outbox_and_unwatched_updates_write_nothing(
    tmp_path: Path, schema: str
) -> None:
    async def body() -> None:
        await sql(schema, MARKS, "INSERT INTO {s}.marks VALUES (1, 'ada', 5, 'secret', NULL)")
        spec = {"marks": {"columns": ["mark"], "exclude": ["comment"], "operations": ["update"]}}
        async with Harness(tmp_path) as h:
            await h.deploy("school", "postgres", settings(schema, **spec))
            await h.connected("school")
            await h.stop()  # nothing drains now: what the triggers wrote stays in the outbox
            await sql(
                schema,
                "UPDATE {s}.marks SET comment = 'still secret'",  # unwatched: not captured
                "UPDATE {s}.marks SET pupil = 'bob'",  # unwatched
                "INSERT INTO {s}.marks VALUES (2, 'eve', 3, 'x', NULL)",  # not an operation
                "UPDATE {s}.marks SET mark = 4, comment = 'hidden' WHERE id = 1",
            )
            outbox = await fetch(schema, "SELECT old::text, new::text FROM {s}.ondo_outbox")
            assert len(outbox) == 1
            assert "secret" not in outbox[0]["old"] and "hidden" not in outbox[0]["new"]
            await h.start()
            events = await h.wait_events(1)
            await asyncio.sleep(0.5)  # a second event would be a bug: give it the time to show
            events = await h.events()
        assert len(events) == 1
        assert events[0].data["new"] == {"id": 1, "pupil": "bob", "mark": 4, "photo": None}
        assert events[0].data["changed"] == ["mark"]

    asyncio.run(body())


def test_changes_made_while_ondo_is_stopped_arrive_once_each_after_it_starts(
    tmp_path: Path, schema: str
) -> None:
    async def body() -> None:
        await sql(schema, MARKS)
        async with Harness(tmp_path) as h:
            await h.deploy("school", "postgres", settings(schema))
            await h.connected("school")
            await sql(schema, "INSERT INTO {s}.marks VALUES (1, 'ada', 5, NULL, NULL)")
            await h.wait_events(1)
            await h.stop()
            await sql(
                schema,
                "INSERT INTO {s}.marks SELECT n, 'p' || n, n % 7, NULL, NULL"
                " FROM generate_series(2, 1201) n",
                "UPDATE {s}.marks SET mark = mark + 1 WHERE id <= 10",
            )
            await h.start()
            events = await h.wait_events(1 + 1200 + 10)
            await h.until(lambda: h.status("school").state == "connected")
            await asyncio.sleep(0.5)  # more would be duplicates: give them the time to show
            events = await h.events()
            left = await fetch(schema, "SELECT count(*) AS n FROM {s}.ondo_outbox")
        assert len(events) == 1211 and len({e.id for e in events}) == 1211
        inserted = [e.data["new"]["id"] for e in events if e.type == "db.row.inserted"]
        assert inserted == list(range(1, 1202))  # in order, across three drain batches
        assert left[0]["n"] == 0

    asyncio.run(body())


@pytest.mark.parametrize("bus", ["sqlite", pytest.param("nats", marks=pytest.mark.nats)])
def test_rows_read_again_after_a_crash_before_delete_are_dropped_by_the_bus(
    tmp_path: Path, schema: str, bus: str
) -> None:
    """A crash between the append and the outbox delete leaves the rows; the next start sends
    them again with the same ids, and the bus keeps the first copy only."""
    cluster = unique_cluster("cdc")
    bus_url = NATS_URL if bus == "nats" else ""
    if bus == "nats":
        require_nats()

    async def body() -> None:
        await sql(schema, MARKS)
        async with Harness(tmp_path, bus_url, cluster) as h:
            await h.deploy("school", "postgres", settings(schema))
            await h.connected("school")
            await sql(
                schema,
                "CREATE TABLE {s}.kept AS SELECT * FROM {s}.ondo_outbox WITH NO DATA",
                "CREATE RULE keep AS ON DELETE TO {s}.ondo_outbox"
                " DO ALSO INSERT INTO {s}.kept SELECT OLD.*",
                "INSERT INTO {s}.marks SELECT n, 'p' || n, 1, NULL, NULL"
                " FROM generate_series(1, 5) n",
            )
            first = await h.wait_events(5)
            await h.stop()
            await sql(  # the crash: the delete never happened
                schema,
                "DROP RULE keep ON {s}.ondo_outbox",
                "INSERT INTO {s}.ondo_outbox SELECT * FROM {s}.kept",
            )
            await h.start()
            await h.until(lambda: _outbox_empty(schema))
            again = await h.events()
            status = h.status("school")
        assert [e.id for e in again] == [e.id for e in first]
        assert status.events == 0  # the second start appended nothing new

    try:
        asyncio.run(body())
    finally:
        if bus == "nats":
            asyncio.run(delete_nats_streams(cluster))


async def _outbox_empty(schema: str) -> bool:
    return not await fetch(schema, "SELECT 1 FROM {s}.ondo_outbox")


def test_a_missing_table_or_column_is_a_visible_error_naming_it(
    tmp_path: Path, schema: str
) -> None:
    async def body() -> None:
        await sql(schema, MARKS)
        async with Harness(tmp_path) as h:
            await h.deploy("nothere", "postgres", settings(schema, grades=None))
            await h.deploy(
                "nocolumn",
                "postgres",
                {**settings(schema, marks={"columns": ["grade"]}), "outbox": "other_outbox"},
            )
            missing_table = await h.until(lambda: h.status("nothere").last_error)
            missing_column = await h.until(lambda: h.status("nocolumn").last_error)
            assert h.status("nothere").state == "retrying"
        assert "table 'grades' does not exist" in missing_table and schema in missing_table
        assert "column 'grade' does not exist in table 'marks'" in missing_column
        assert "pupil" in missing_column  # the columns it does have
        assert await _triggers_are(schema, {})()  # nothing installed when the settings are wrong

    asyncio.run(body())


def test_a_table_of_the_outbox_name_that_is_not_an_outbox_is_refused(
    tmp_path: Path, schema: str
) -> None:
    async def body() -> None:
        await sql(schema, MARKS, "CREATE TABLE {s}.ondo_outbox (id int)")
        async with Harness(tmp_path) as h:
            await h.deploy("school", "postgres", settings(schema))
            error = await h.until(lambda: h.status("school").last_error)
        assert "is not an ondo outbox" in error and "outbox:" in error

    asyncio.run(body())


def test_a_table_dropped_from_the_settings_loses_its_trigger(tmp_path: Path, schema: str) -> None:
    async def body() -> None:
        await sql(schema, MARKS, "CREATE TABLE {s}.pupils (id int PRIMARY KEY, name text)")
        async with Harness(tmp_path) as h:
            await h.deploy("school", "postgres", settings(schema, marks=None, pupils=None))
            await h.connected("school")
            every = [f"ondo_outbox_{role}" for role in ("delete", "insert", "notify", "update")]
            await h.until(_triggers_are(schema, {"marks": every, "pupils": every}))
            only_updates = {"operations": ["update"]}
            await h.deploy("school", "postgres", settings(schema, marks=only_updates))
            await h.until(
                _triggers_are(schema, {"marks": ["ondo_outbox_notify", "ondo_outbox_update"]})
            )
            await h.deploy("school", "postgres", settings(schema, marks=None))
            await h.until(_triggers_are(schema, {"marks": every}))
            await sql(
                schema,
                "INSERT INTO {s}.pupils VALUES (1, 'ada')",
                "INSERT INTO {s}.marks VALUES (1, 'ada', 5, NULL, NULL)",
            )
            events = await h.wait_events(1)
            await asyncio.sleep(0.3)
            events = await h.events()
        assert [e.data["table"] for e in events] == ["marks"]

    asyncio.run(body())


def _triggers_are(schema: str, wanted: dict[str, list[str]]) -> Any:
    """A check: the ondo triggers in the schema are exactly `wanted` (table -> trigger names)."""

    async def check() -> bool:
        rows = await fetch(
            schema,
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = '{s}' AND t.tgname LIKE 'ondo_outbox_%' ORDER BY 1, 2",
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["relname"], []).append(row["tgname"])
        return found == wanted

    return check


def test_columns_without_an_equality_operator_never_fail_the_users_update(
    tmp_path: Path, schema: str
) -> None:
    """`json` and `point` cannot be compared with `=`: the triggers compare them as jsonb."""

    async def body() -> None:
        await sql(
            schema,
            "CREATE TABLE {s}.shapes (id int PRIMARY KEY, doc json, at point, n int)",
            "CREATE TABLE {s}.docs (id int PRIMARY KEY, doc json, n int)",
            "INSERT INTO {s}.shapes VALUES (1, '{{\"a\": 1}}', point(1, 2), 0)",
            "INSERT INTO {s}.docs VALUES (1, '{{\"a\": 1}}', 0)",
        )
        tables = {"shapes": None, "docs": {"columns": ["doc"]}}
        async with Harness(tmp_path) as h:
            await h.deploy("shapes", "postgres", settings(schema, **tables))
            await h.connected("shapes")
            await sql(
                schema,
                "UPDATE {s}.shapes SET at = point(3, 4)",
                "UPDATE {s}.shapes SET doc = '{{\"a\": 2}}'",
                "UPDATE {s}.docs SET n = 1",  # not watched
                "UPDATE {s}.docs SET doc = '{{\"b\": 1}}'",
            )
            events = await h.wait_events(3)
            await asyncio.sleep(0.3)
            events = await h.events()
        assert [(e.data["table"], e.data["changed"]) for e in events] == [
            ("shapes", ["at"]),
            ("shapes", ["doc"]),
            ("docs", ["doc"]),
        ]
        assert events[1].data["new"]["doc"] == {"a": 2}

    asyncio.run(body())
