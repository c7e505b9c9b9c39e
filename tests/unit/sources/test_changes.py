"""The change-capture kinds' settings, and the events their rows become, against the rule of
docs/rules.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ondo.deploy.manifest import parse_manifest
from ondo.errors import ConfigError
from ondo.patterns import compile as compile_pattern
from ondo.rules.model import parse_rule
from ondo.sources.base import PlainWhere
from ondo.sources.changes import Layout, OutboxRow, changed_columns, row_event
from ondo.sources.postgres import KIND as POSTGRES
from ondo.sources.sqlite import KIND as SQLITE

URL = "postgresql://app:pw@db.example:5432/school"
RULE = 'on db.row.updated from school where table == "marks" and "mark" in changed do invoke f'
WHERE = PlainWhere(Path("/srv/app"), "sources.school")


def pg(**settings: Any) -> dict[str, Any]:
    return POSTGRES.validate({"url": URL, "tables": {"marks": None}, **settings}, WHERE)


def refused(settings: dict[str, Any], kind: Any = POSTGRES) -> str:
    with pytest.raises(ConfigError) as caught:
        kind.validate(settings, WHERE)
    return str(caught.value)


def test_postgres_defaults() -> None:
    assert pg() == {
        "url": URL,
        "schema": "public",
        "outbox": "ondo_outbox",
        "poll": 5.0,
        "tables": {
            "marks": {"columns": [], "exclude": [], "operations": ["insert", "update", "delete"]}
        },
    }


def test_table_settings_are_kept_and_operations_ordered() -> None:
    tables = {
        "marks": {"columns": ["mark"], "exclude": ["comment"], "operations": ["delete", "update"]}
    }
    assert pg(tables=tables, schema="exams", poll="250ms")["tables"] == {
        "marks": {"columns": ["mark"], "exclude": ["comment"], "operations": ["update", "delete"]}
    }
    assert pg(tables=["marks", "pupils"])["tables"]["pupils"]["columns"] == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "mysql://x/y"}, "sources.school.url: url must be the database to watch"),
        ({"tables": {}}, "sources.school.tables: tables must name at least one table"),
        ({"tables": {"marks; DROP TABLE x": None}}, "is not a plain SQL name"),
        ({"tables": {"marks": {"columns": ["a b"]}}}, "tables.marks.columns.0: column name"),
        ({"tables": {"marks": {"exclude": "comment"}}}, "must be a list of column names"),
        ({"tables": {"marks": {"columns": ["a", "a"]}}}, "names a column twice"),
        ({"tables": {"marks": {"column": ["a"]}}}, "unknown key 'column'"),
        ({"tables": {"marks": {"operations": ["upsert"]}}}, "unknown operation 'upsert'"),
        ({"tables": {"marks": {"operations": []}}}, "operations must be a list"),
        ({"tables": {"marks": "all"}}, "a table's settings are a mapping"),
        (
            {"tables": {"marks": {"columns": ["mark"], "exclude": ["mark"]}}},
            "column 'mark' is both watched (columns) and excluded",
        ),
        ({"schema": "my schema"}, "schema name 'my schema' is not a plain SQL name"),
        ({"outbox": "o" * 57}, "the outbox name is at most 56 characters"),
        ({"poll": "soon"}, "sources.school.poll: duration 'soon' is not understood"),
        ({"poll": "0s"}, "poll must be more than zero"),
        ({"slot": "x"}, "unknown key 'slot'"),
    ],
)
def test_postgres_refuses_bad_settings_naming_the_field(
    settings: dict[str, Any], message: str
) -> None:
    assert message in refused({"url": URL, "tables": {"marks": None}, **settings})


def test_sqlite_path_resolves_against_the_app_directory(tmp_path: Path) -> None:
    spec = SQLITE.validate({"path": "data/school.db", "tables": ["marks"]}, PlainWhere(tmp_path))
    assert spec["path"] == str(tmp_path / "data" / "school.db")
    assert spec["poll"] == 1.0 and spec["outbox"] == "ondo_outbox"
    assert SQLITE.validate({"path": "/abs/x.db", "tables": ["m"]}, WHERE)["path"] == "/abs/x.db"


def test_sqlite_refuses_a_missing_path_or_a_directory(tmp_path: Path) -> None:
    assert "path must be the database file" in refused({"tables": ["marks"]}, SQLITE)
    where = PlainWhere(tmp_path)
    with pytest.raises(ConfigError, match="is a directory"):
        SQLITE.validate({"path": ".", "tables": ["marks"]}, where)
    assert "unknown key 'url'" in refused({"path": "x.db", "url": URL, "tables": ["m"]}, SQLITE)


def test_a_bad_column_in_ondo_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    text = """name: school
sources:
  school:
    kind: postgres
    url: postgresql://127.0.0.1/school
    tables:
      marks:
        columns: [mark, "mark; --"]
"""
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, tmp_path, "ondo.yaml")
    assert "ondo.yaml:8" in str(caught.value) and "mark; --" in str(caught.value)


def row(operation: str, change: str = "mark", table: str = "marks") -> OutboxRow:
    old = {"id": 7, "pupil": "ada", "mark": 5}
    new = {**old, "mark": 6} if change == "mark" else {**old, change: "other"}
    return OutboxRow(
        id=1_796_000_000_000_000_042,
        table=table,
        operation=operation,
        old=None if operation == "insert" else old,
        new=None if operation == "delete" else new,
        at=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        schema="public",
        user="teacher",
    )


MARKS = Layout(["id", "pupil", "mark"], ["id"])


def matches(event_json: dict[str, Any]) -> bool:
    spec = parse_rule(RULE)
    assert spec.condition is None  # all of it is a pattern: no residual condition to evaluate
    return compile_pattern(dict(spec.pattern)).matches(event_json)


def test_the_rule_of_docs_rules_md_matches_an_update_of_the_mark_only() -> None:
    assert matches(row_event("school", row("update"), MARKS).to_json_dict())
    assert not matches(row_event("school", row("update", "pupil"), MARKS).to_json_dict())
    assert not matches(row_event("school", row("update", table="pupils"), MARKS).to_json_dict())
    assert not matches(row_event("school", row("insert"), MARKS).to_json_dict())
    assert not matches(row_event("exams", row("update"), MARKS).to_json_dict())


def test_a_row_event_carries_the_change_under_an_id_from_the_outbox() -> None:
    event = row_event("school", row("update"), MARKS)
    assert event.to_json_dict() == {
        "specversion": "1.0",
        "id": "row-1796000000000000042",
        "source": "school",
        "type": "db.row.updated",
        "time": "2026-12-03T12:00:00Z",
        "subject": "marks/7",
        "datacontenttype": "application/json",
        "data": {
            "table": "marks",
            "operation": "update",
            "changed": ["mark"],
            "old": {"id": 7, "pupil": "ada", "mark": 5},
            "new": {"id": 7, "pupil": "ada", "mark": 6},
            "user": "teacher",
            "schema": "public",
        },
    }
    assert row_event("school", row("update"), MARKS) == event  # the same id again
    two_keys = Layout(MARKS.columns, ["id", "pupil"])
    assert row_event("school", row("delete"), two_keys).subject == "marks/7,ada"
    assert row_event("school", row("delete"), Layout(MARKS.columns)).subject is None  # no key
    assert row_event("school", row("delete"), Layout(keys=["gone"])).subject is None  # excluded


def test_changed_columns_come_in_table_order() -> None:
    layout = Layout(["id", "pupil", "mark", "note"])
    assert changed_columns(row("insert"), layout) == ["id", "pupil", "mark"]
    assert changed_columns(row("delete"), Layout()) == ["id", "mark", "pupil"]  # none known
    both = OutboxRow(
        id=1,
        table="marks",
        operation="update",
        old={"mark": 5, "pupil": "ada", "flag": 1, "n": 1, "x": 1},
        new={"pupil": "bob", "mark": 6, "flag": True, "n": 1.0, "added": 2, "x": 1},
        at=datetime(2026, 12, 3, tzinfo=UTC),
    )
    # true is not 1 (jsonb says so, Python does not); 1 is 1.0; a new column comes last
    assert changed_columns(both, layout) == ["pupil", "mark", "added", "flag"]
