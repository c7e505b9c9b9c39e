"""What the postgres and sqlite change-capture kinds share: their `tables:` settings, the outbox
row they drain, the `db.row.*` event each row becomes, and the drain loop.

Both kinds follow the outbox pattern: a trigger on each watched table writes one row per
inserted, updated or deleted row into an outbox table in the user's own database, in the same
transaction as the change. ondo reads the outbox in id order, appends the events to the bus and
then deletes the rows it appended. A crash between the append and the delete reads the same rows
again: their event ids come from the outbox ids, so the bus drops the second copy (it dedups by
(namespace, source, id)). Changes made while ondo is down wait in the outbox.

Outbox ids start at the outbox's creation time in microseconds times 1000 (`first_outbox_id`), so an
outbox dropped and created again never reuses an id the bus still remembers as delivered.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ondo.durations import parse_duration
from ondo.errors import ConfigError, DurationError, PayloadTooLarge
from ondo.events import CloudEvent
from ondo.sources.base import FieldPath, SourceContext, Where

# Plain identifiers only: they are quoted in every statement, and a name that needs more
# (spaces, quotes, dots) is far likelier a typo than a real table.
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
OPERATIONS = ("insert", "update", "delete")
TYPES = {"insert": "db.row.inserted", "update": "db.row.updated", "delete": "db.row.deleted"}
TABLE_KEYS = ("columns", "exclude", "operations")
BATCH = 500  # outbox rows per read, per bus append and per delete
DEFAULT_OUTBOX = "ondo_outbox"


@dataclass(frozen=True)
class TableSettings:
    """One watched table as validated: `columns` empty means every column matters."""

    name: str
    columns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    operations: tuple[str, ...] = OPERATIONS

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "exclude": list(self.exclude),
            "operations": list(self.operations),
        }

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> TableSettings:
        return cls(
            name,
            tuple(raw.get("columns") or ()),
            tuple(raw.get("exclude") or ()),
            tuple(raw.get("operations") or OPERATIONS),
        )


def identifier(value: Any, at: Where, path: FieldPath, what: str) -> str:
    if not isinstance(value, str) or not IDENT_RE.match(value):
        raise at.error(
            path,
            f"{what} {value!r} is not a plain SQL name: letters, digits and _, not starting with"
            " a digit, at most 63 characters",
        )
    return value


def q(name: str) -> str:
    """A quoted identifier (names are checked against IDENT_RE at deploy, so no quotes in them)."""
    return f'"{name}"'


def poll_seconds(settings: Mapping[str, Any], at: Where, default: float) -> float:
    raw = settings.get("poll")
    if raw is None:
        return default
    try:
        seconds = parse_duration(str(raw), bare_seconds=True)
    except DurationError as exc:
        raise at.error(("poll",), str(exc)) from None
    if seconds <= 0:
        raise at.error(("poll",), "poll must be more than zero, such as 1s or 500ms")
    return seconds


def validate_tables(raw: Any, at: Where) -> dict[str, dict[str, Any]]:
    """`tables:` as {table: {columns, exclude, operations}}; a list of names means defaults."""
    if isinstance(raw, list):
        raw = dict.fromkeys(raw)
    if not isinstance(raw, dict) or not raw:
        raise at.error(
            ("tables",),
            "tables must name at least one table: {marks: {columns: [mark], exclude: [notes]}}",
        )
    return {
        identifier(name, at, ("tables", name), "table name"): _table(name, spec, at).to_json()
        for name, spec in raw.items()
    }


def _table(name: str, spec: Any, at: Where) -> TableSettings:
    path: FieldPath = ("tables", name)
    if spec is None:
        return TableSettings(name)
    if not isinstance(spec, dict):
        raise at.error(path, "a table's settings are a mapping: {columns, exclude, operations}")
    for key in spec:
        if key not in TABLE_KEYS:
            raise at.error((*path, key), f"unknown key {key!r}; allowed: {', '.join(TABLE_KEYS)}")
    columns = _names(spec.get("columns"), at, (*path, "columns"))
    exclude = _names(spec.get("exclude"), at, (*path, "exclude"))
    both = sorted(set(columns) & set(exclude))
    if both:
        raise at.error(
            (*path, "exclude"),
            f"column {both[0]!r} is both watched (columns) and excluded; an excluded column"
            " never leaves the database, so its changes cannot be watched",
        )
    operations = spec.get("operations", list(OPERATIONS))
    if not isinstance(operations, list) or not operations:
        raise at.error(
            (*path, "operations"), f"operations must be a list of {', '.join(OPERATIONS)}"
        )
    for index, op in enumerate(operations):
        if op not in OPERATIONS:
            raise at.error(
                (*path, "operations", index),
                f"unknown operation {op!r}; use {', '.join(OPERATIONS)}",
            )
    ordered = tuple(op for op in OPERATIONS if op in operations)
    return TableSettings(name, columns, exclude, ordered)


def _names(raw: Any, at: Where, path: FieldPath) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise at.error(path, "must be a list of column names: [mark, student]")
    names = tuple(identifier(v, at, (*path, i), "column name") for i, v in enumerate(raw))
    if len(set(names)) != len(names):
        raise at.error(path, "names a column twice")
    return names


def tables_of(spec: Mapping[str, Any]) -> list[TableSettings]:
    return [TableSettings.from_json(name, raw) for name, raw in spec["tables"].items()]


def check_columns(table: TableSettings, found: Sequence[str], where: str) -> None:
    """ConfigError naming the first watched or excluded column the table lacks."""
    if not found:
        raise ConfigError(
            f"table {table.name!r} does not exist in {where}; create it, or fix the name under"
            " tables: in ondo.yaml"
        )
    for column in (*table.columns, *table.exclude):
        if column not in found:
            raise ConfigError(
                f"column {column!r} does not exist in table {table.name!r} of {where}"
                f" (it has {', '.join(found)}); fix it under tables.{table.name} in ondo.yaml"
            )


def first_outbox_id() -> int:
    """Where a new outbox starts counting (see the module docstring)."""
    return time.time_ns() // 1000 * 1000


# --- outbox rows and their events -------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    """One captured change; `old` and `new` hold the row without its excluded columns."""

    id: int
    table: str
    operation: str  # insert | update | delete
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: datetime
    schema: str | None = None
    user: str | None = None
    role: str | None = None
    txid: int | None = None


@dataclass(frozen=True)
class Layout:
    """A watched table's columns in table order, and its primary key's (for the subject)."""

    columns: Sequence[str] = ()
    keys: Sequence[str] = ()


NO_LAYOUT = Layout()


def changed_columns(row: OutboxRow, layout: Layout) -> list[str]:
    """Every column of an inserted or deleted row; the columns whose value differs for an
    update (computed here rather than in the trigger: it halves the trigger's cost). In table
    order; a column the layout does not know yet (added since the start) comes last."""
    old, new = row.old, row.new
    names: Collection[str]
    if old is None or new is None:
        names = new or old or {}
    else:
        names = {
            k for k in {**old, **new} if k not in old or k not in new or _differ(old[k], new[k])
        }
    known = [c for c in layout.columns if c in names]
    if len(known) < len(names):
        known += sorted(set(names) - set(layout.columns))
    return known


def loads(value: Any) -> Any:
    """A JSON column as Python (drivers hand JSON back as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def parse_time(text: str) -> datetime:
    """SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')` as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _differ(a: Any, b: Any) -> bool:
    """As jsonb compares: `true` is not `1` (Python says it is), `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is not type(b) or a != b
    return bool(a != b)


def row_event(source: str, row: OutboxRow, layout: Layout, slim: bool = False) -> CloudEvent:
    """The `db.row.*` event of one outbox row. The subject is `table/key` (`marks/42`,
    `grades/7,2`) when the table has a primary key and its values are in the row."""
    data: dict[str, Any] = {
        "table": row.table,
        "operation": row.operation,
        "changed": changed_columns(row, layout),
        "old": None if slim else row.old,
        "new": None if slim else row.new,
        "user": row.user,
    }
    if row.schema is not None:
        data["schema"] = row.schema
    if row.role is not None:
        data["role"] = row.role
    if row.txid is not None:
        data["txid"] = row.txid
    if slim:
        data["too_large"] = True
    return CloudEvent(
        source=source,
        type=TYPES[row.operation],
        id=f"row-{row.id}",
        time=row.at,
        subject=_subject(row, layout.keys),
        datacontenttype="application/json",
        data=data,
    )


def _subject(row: OutboxRow, keys: Sequence[str]) -> str | None:
    values = row.new if row.new is not None else row.old
    if not keys or values is None or any(k not in values for k in keys):
        return None
    return f"{row.table}/" + ",".join(str(values[k]) for k in keys)


# --- draining ---------------------------------------------------------------------------


class Outbox(Protocol):
    """One kind's outbox in the user's database."""

    async def fetch(self, after: int, limit: int) -> list[OutboxRow]:
        """The oldest rows with an id above `after`, by id."""

    async def delete(self, rows: Sequence[OutboxRow]) -> None:
        """Delete these rows (they are on the bus)."""

    def layout(self, table: str) -> Layout:
        """The table's columns and primary key as found at the start."""


async def drain(outbox: Outbox, ctx: SourceContext) -> int:
    """Append every row in the outbox to the bus, in id order, a batch at a time; how many.

    Pipelined: while the bus appends one batch, the outbox deletes the batch before it and reads
    the next (database and bus wait on different machines, or threads). A batch is deleted only
    once the bus has it. A row committed late with an id below what this pass has read is left
    for the next pass, which starts from the beginning again.
    """
    total = 0
    appended: list[OutboxRow] = []
    rows = await outbox.fetch(0, BATCH)
    while rows:
        emitting = asyncio.create_task(_emit(ctx, rows, outbox))
        try:
            if appended:
                await outbox.delete(appended)
            following = await outbox.fetch(rows[-1].id, BATCH)
        finally:
            await emitting  # never leave it running: an error here waits for the append
        total += len(rows)
        appended, rows = rows, following
    if appended:
        await outbox.delete(appended)
    return total


async def _emit(ctx: SourceContext, rows: Sequence[OutboxRow], outbox: Outbox) -> None:
    events = [row_event(ctx.name, row, outbox.layout(row.table)) for row in rows]
    try:
        await ctx.emit_many(events)
    except PayloadTooLarge:
        await _emit_one_by_one(ctx, rows, events, outbox)


async def _emit_one_by_one(
    ctx: SourceContext, rows: Sequence[OutboxRow], events: Sequence[CloudEvent], outbox: Outbox
) -> None:
    """A row too large for one event still fires its rules: without its values, recorded."""
    for row, event in zip(rows, events, strict=True):
        try:
            await ctx.emit(event)
        except PayloadTooLarge as exc:
            ctx.problem(
                f"the {row.operation} of a row in table {row.table!r} (outbox id {row.id}) is too"
                f" large for one event ({exc}); it was emitted without old and new values"
            )
            await ctx.emit(row_event(ctx.name, row, outbox.layout(row.table), slim=True))
