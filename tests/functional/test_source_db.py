"""Database change capture on a running platform: a row update in the user's database drives the
rule of docs/rules.md to a function, and changes made while ondo is stopped arrive once each
after it starts again. Each source kind (postgres, sqlite) on the run's backend."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import yaml

from tests.functional.platform import RunningPlatform, wait_for
from tests.services import require_postgres

RULE = (
    'on db.row.updated from school where table == "marks" and "mark" in changed'
    " do invoke record-mark"
)
RECORD = """
def handler(event, context):
    return {"event": event}
"""


class Database(Protocol):
    def settings(self) -> dict[str, Any]: ...

    def execute(self, *statements: str) -> None: ...

    def outbox_rows(self) -> int: ...


class Postgres:
    """A schema of its own in the `test` database, holding the `marks` table."""

    def __init__(self) -> None:
        self.url = require_postgres()
        self.schema = f"school_{uuid.uuid4().hex[:10]}"

    def settings(self) -> dict[str, Any]:
        return {"kind": "postgres", "url": self.url, "schema": self.schema, "poll": "1s"}

    def execute(self, *statements: str) -> None:
        asyncio.run(self._run(f"SET search_path TO {self.schema}", *statements))

    def outbox_rows(self) -> int:
        return int(asyncio.run(self._count()))

    async def _run(self, *statements: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def _count(self) -> int:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {self.schema}.ondo_outbox"))
        finally:
            await conn.close()


class Sqlite:
    def __init__(self, path: Path) -> None:
        self.path = path

    def settings(self) -> dict[str, Any]:
        return {"kind": "sqlite", "path": "school.db", "poll": "200ms"}  # relative to the app

    def execute(self, *statements: str) -> None:
        with sqlite3.connect(self.path) as conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()

    def outbox_rows(self) -> int:
        conn = sqlite3.connect(self.path)
        try:
            return int(conn.execute("SELECT count(*) FROM ondo_outbox").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture(params=["postgres", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Sqlite(tmp_path / "app" / "school.db")
        return
    db = Postgres()
    asyncio.run(db._run(f"CREATE SCHEMA {db.schema}"))
    yield db
    asyncio.run(db._run(f"DROP SCHEMA IF EXISTS {db.schema} CASCADE"))


def write_app(root: Path, database: Database) -> Path:
    source = {**database.settings(), "tables": {"marks": {"exclude": ["comment"]}}}
    manifest = {
        "name": "school",
        "functions": {"record-mark": {"code": "./record", "handler": "app.handler"}},
        "sources": {"school": source},
        "rules": [{"name": "mark-changed", "when": RULE}],
    }
    (root / "record").mkdir(parents=True, exist_ok=True)
    (root / "record" / "app.py").write_text(RECORD)
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def recorded(api: httpx.Client) -> list[dict[str, Any]]:
    """The events record-mark was invoked with (finished invocations)."""
    response = api.get("/v1/functions/record-mark/invocations")
    response.raise_for_status()
    return [
        r["result"]["event"] for r in response.json()["invocations"] if r["status"] == "succeeded"
    ]


def marks(api: httpx.Client) -> list[tuple[int, int]]:
    return sorted((e["data"]["new"]["id"], e["data"]["new"]["mark"]) for e in recorded(api))


def connected(api: httpx.Client) -> bool:
    response = api.get("/v1/sources/school")
    return response.status_code == 200 and response.json()["state"] == "connected"


def test_a_mark_update_invokes_the_function_and_changes_while_stopped_arrive_once(
    tmp_path: Path, database: Database
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    database.execute(
        "CREATE TABLE marks (id int PRIMARY KEY, pupil text, mark int, comment text)",
        "INSERT INTO marks VALUES (1, 'ada', 5, 'a private remark')",
        "INSERT INTO marks VALUES (2, 'bob', 3, NULL)",
    )
    write_app(app, database)
    running = RunningPlatform(tmp_path / "data", apps=[app])
    with running, running.client() as api:
        wait_for(lambda: connected(api))
        database.execute(
            "UPDATE marks SET pupil = 'Ada' WHERE id = 1",  # an event the rule does not want
            "UPDATE marks SET mark = 6 WHERE id = 1",
        )
        wait_for(lambda: marks(api) == [(1, 6)])
        event = recorded(api)[0]
        assert event["source"] == "school" and event["type"] == "db.row.updated"
        assert event["subject"] == "marks/1"
        assert event["data"]["changed"] == ["mark"] and event["data"]["table"] == "marks"
        assert event["data"]["old"] == {"id": 1, "pupil": "Ada", "mark": 5}  # no comment

        running.stop()
        database.execute(  # while ondo is stopped: the outbox keeps them
            "UPDATE marks SET mark = 7 WHERE id = 1",
            "UPDATE marks SET mark = 4 WHERE id = 2",
            "UPDATE marks SET comment = 'unseen' WHERE id = 2",  # excluded: no change at all
        )
        assert database.outbox_rows() == 2
        running.start()
        wait_for(lambda: marks(api) == [(1, 6), (1, 7), (2, 4)])
        wait_for(lambda: database.outbox_rows() == 0)
        updates = api.get("/v1/events", params={"type": "db.row.updated"}).json()["events"]
        assert len(updates) == 4  # the pupil's name, and three marks: each once
        source = api.get("/v1/sources/school").json()
        assert source["state"] == "connected" and source["errors"] == 0
