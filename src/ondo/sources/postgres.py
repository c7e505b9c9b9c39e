"""`kind: postgres` — change capture on chosen tables of the user's PostgreSQL database.

On every start, ondo installs (idempotently: CREATE OR REPLACE) its trigger functions and the
triggers of each watched table (PostgresOutbox says which). They write each inserted, updated or
deleted row to the outbox table (old and new values as JSONB with the excluded columns already
removed, the database user and role, the transaction id, the time) and notify the channel
`SCHEMA.OUTBOX`; ondo listens and drains the outbox in order (changes.py). Exclusion and the
`columns` filter happen in the database, so excluded values never leave it and an update of
unwatched columns writes nothing. Triggers of tables the settings no longer name are dropped at
the next start.

```yaml
sources:
  school:
    kind: postgres
    url: postgresql://app@db.example/school
    tables:
      marks: {columns: [mark], exclude: [comment], operations: [update]}
      pupils: {}
```
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ondo.errors import ConfigError, SourceKindUnavailable
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
    poll_seconds,
    q,
    tables_of,
    validate_tables,
)

if TYPE_CHECKING:
    import asyncpg

    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.sources.base import SourceContext

KEYS = ("url", "tables", "schema", "outbox", "poll")
DEFAULT_POLL_S = 5.0  # a look without a notification, in case one was missed
MAX_OUTBOX_NAME = 56  # + "_update" stays within PostgreSQL's 63-character names
OUTBOX_COLUMNS = [
    "id", "at", "txid", "schema_name", "table_name", "operation",
    "db_user", "db_role", "old", "new",
]  # fmt: skip


class PostgresKind:
    name = "postgres"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, KEYS, at)
        url = settings.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise at.error(
                ("url",), "url must be the database to watch: postgresql://user@host:5432/db"
            )
        schema = identifier(settings.get("schema", "public"), at, ("schema",), "schema name")
        outbox = identifier(settings.get("outbox", DEFAULT_OUTBOX), at, ("outbox",), "outbox")
        if len(outbox) > MAX_OUTBOX_NAME:
            raise at.error(("outbox",), f"the outbox name is at most {MAX_OUTBOX_NAME} characters")
        return {
            "url": url,
            "schema": schema,
            "outbox": outbox,
            "poll": poll_seconds(settings, at, DEFAULT_POLL_S),
            "tables": validate_tables(settings.get("tables"), at),
        }

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        try:
            import asyncpg
        except ImportError as exc:
            raise SourceKindUnavailable(
                "the postgres source needs asyncpg: pip install 'ondo[postgres]'"
            ) from exc
        spec = source.spec
        conn = await asyncpg.connect(spec["url"])
        try:
            outbox = PostgresOutbox(conn, spec["schema"], spec["outbox"])
            await outbox.install(tables_of(spec), where=describe(spec["url"], spec["schema"]))
            wake = asyncio.Event()
            await conn.add_listener(outbox.channel, lambda *_: wake.set())
            conn.add_termination_listener(lambda *_: wake.set())
            ctx.connected(f"{describe(spec['url'], spec['schema'])}, outbox {spec['outbox']}")
            while True:
                wake.clear()
                await drain(outbox, ctx)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(spec["poll"]):
                        await wake.wait()
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await asyncio.shield(conn.close(timeout=5))


def describe(url: str, schema: str) -> str:
    """Where the tables are, without the password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"schema {schema} of postgresql://{host}{port}{parts.path}"


class PostgresOutbox:
    """The outbox table, its trigger functions and the triggers, in the user's database.

    Per watched table: inserts and deletes are captured by statement-level triggers reading the
    statement's transition table (one INSERT … SELECT for a whole bulk statement), updates by a
    row-level trigger (an update's old and new rows can only be paired row by row) whose WHEN
    clause skips updates of unwatched columns before any function runs, and one statement-level
    trigger notifies the channel once per statement.
    """

    def __init__(self, conn: asyncpg.Connection, schema: str, name: str) -> None:
        self.conn = conn
        self.schema = schema
        self.name = name
        self.table = f"{q(schema)}.{q(name)}"
        self.channel = f"{schema}.{name}"
        self._layouts: dict[str, Layout] = {}

    def function(self, role: str) -> str:
        return f"{q(self.schema)}.{q(self.name + '_' + role)}"

    def trigger(self, role: str) -> str:
        return f"{self.name}_{role}"

    async def install(self, tables: Sequence[TableSettings], where: str) -> None:
        """Create or update the outbox, the functions and the triggers, after checking that
        every named table and column exists (ConfigError naming the first that does not)."""
        names = [t.name for t in tables]
        columns = await self._columns(names)
        for table in tables:
            check_columns(table, columns.get(table.name, []), where)
        async with self.conn.transaction():
            # Two processes starting the same source at once would race on CREATE.
            await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
            await self.conn.execute(self._create_outbox())
            await self._check_outbox()
            for statement in self._create_functions():
                await self.conn.execute(statement)
            wanted: set[tuple[str, str]] = set()
            for table in tables:
                for role, statement in self._create_triggers(table):
                    await self.conn.execute(statement)
                    wanted.add((table.name, self.trigger(role)))
            await self._drop_stale_triggers(wanted)
        keys = await self._primary_keys(names)
        self._layouts = {t: Layout(columns[t], keys.get(t, [])) for t in names}

    async def _columns(self, tables: list[str]) -> dict[str, list[str]]:
        rows = await self.conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = ANY($2::text[]) ORDER BY ordinal_position",
            self.schema,
            tables,
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], []).append(row["column_name"])
        return found

    async def _primary_keys(self, tables: list[str]) -> dict[str, list[str]]:
        rows = await self.conn.fetch(
            "SELECT c.relname, a.attname FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
            " WHERE i.indisprimary AND n.nspname = $1 AND c.relname = ANY($2::text[])"
            " ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)",
            self.schema,
            tables,
        )
        keys: dict[str, list[str]] = {}
        for row in rows:
            keys.setdefault(row["relname"], []).append(row["attname"])
        return keys

    def _create_outbox(self) -> str:
        return f"""
        CREATE TABLE IF NOT EXISTS {self.table} (
            id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH {first_outbox_id()})
                PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            txid bigint NOT NULL DEFAULT txid_current(),
            schema_name text NOT NULL,
            table_name text NOT NULL,
            operation text NOT NULL,
            db_user text NOT NULL DEFAULT session_user,
            db_role text NOT NULL DEFAULT current_user,
            old jsonb,
            new jsonb
        )"""

    async def _check_outbox(self) -> None:
        """A table of that name that is not an ondo outbox would make every trigger fail."""
        found = await self._columns([self.name])
        if found.get(self.name) != OUTBOX_COLUMNS:
            raise ConfigError(
                f"table {self.name!r} in schema {self.schema!r} exists and is not an ondo outbox"
                f" (its columns: {', '.join(found.get(self.name, []))}); choose another name with"
                " `outbox:` in the source's settings"
            )

    def _create_functions(self) -> list[str]:
        # TG_ARGV[0] of the capturing functions: the excluded columns, removed here so that
        # their values never leave the database.
        insert = f"INSERT INTO {self.table} (schema_name, table_name, operation, old, new)"
        rows = f"""
        CREATE OR REPLACE FUNCTION {self.function("rows")}() RETURNS trigger
        LANGUAGE plpgsql AS $capture$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {insert} SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'insert', NULL,
                                to_jsonb(r) - TG_ARGV[0]::text[]
                           FROM ondo_new_rows r;
            ELSE
                {insert} SELECT TG_TABLE_SCHEMA, TG_TABLE_NAME, 'delete',
                                to_jsonb(r) - TG_ARGV[0]::text[], NULL
                           FROM ondo_old_rows r;
            END IF;
            RETURN NULL;
        END
        $capture$"""
        update = f"""
        CREATE OR REPLACE FUNCTION {self.function("update")}() RETURNS trigger
        LANGUAGE plpgsql AS $capture$
        DECLARE
            old_j jsonb := to_jsonb(OLD) - TG_ARGV[0]::text[];
            new_j jsonb := to_jsonb(NEW) - TG_ARGV[0]::text[];
        BEGIN
            IF old_j = new_j THEN
                RETURN NULL;  -- only excluded columns changed: nothing may leave
            END IF;
            {insert} VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 'update', old_j, new_j);
            RETURN NULL;
        END
        $capture$"""
        notify = f"""
        CREATE OR REPLACE FUNCTION {self.function("notify")}() RETURNS trigger
        LANGUAGE plpgsql AS $capture$
        BEGIN
            PERFORM pg_notify('{self.channel}', '');
            RETURN NULL;
        END
        $capture$"""
        return [rows, update, notify]

    def _create_triggers(self, table: TableSettings) -> list[tuple[str, str]]:
        """(role, CREATE OR REPLACE TRIGGER …) for each trigger the table's settings want."""
        on = f"{q(self.schema)}.{q(table.name)}"
        excluded = "'{" + ",".join(table.exclude) + "}'"
        wanted: list[tuple[str, str]] = []
        head = "CREATE OR REPLACE TRIGGER"
        if "insert" in table.operations:
            wanted.append(("insert", (
                f"{head} {q(self.trigger('insert'))} AFTER INSERT ON {on}"
                " REFERENCING NEW TABLE AS ondo_new_rows FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {self.function('rows')}({excluded})"
            )))  # fmt: skip
        if "delete" in table.operations:
            wanted.append(("delete", (
                f"{head} {q(self.trigger('delete'))} AFTER DELETE ON {on}"
                " REFERENCING OLD TABLE AS ondo_old_rows FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {self.function('rows')}({excluded})"
            )))  # fmt: skip
        if "update" in table.operations:
            # Compared as jsonb: `json`, `point`, … have no equality operator, and comparing
            # them directly (or `OLD.* IS DISTINCT FROM NEW.*`) would fail the user's UPDATE.
            watched = " OR ".join(
                f"to_jsonb(OLD.{q(c)}) IS DISTINCT FROM to_jsonb(NEW.{q(c)})" for c in table.columns
            )
            wanted.append(("update", (
                f"{head} {q(self.trigger('update'))} AFTER UPDATE ON {on} FOR EACH ROW"
                + (f" WHEN ({watched})" if watched else "")
                + f" EXECUTE FUNCTION {self.function('update')}({excluded})"
            )))  # fmt: skip
        events = " OR ".join(op.upper() for op in table.operations)
        wanted.append(("notify", (
            f"{head} {q(self.trigger('notify'))} AFTER {events} ON {on} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION {self.function('notify')}()"
        )))  # fmt: skip
        return wanted

    async def _drop_stale_triggers(self, wanted: set[tuple[str, str]]) -> None:
        """This outbox's triggers on tables, or for operations, the settings no longer name."""
        rows = await self.conn.fetch(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND t.tgname = ANY($2::text[])",
            self.schema,
            [self.trigger(role) for role in ROLES],
        )
        for row in rows:
            if (row["relname"], row["tgname"]) not in wanted:
                table = f"{q(self.schema)}.{q(row['relname'])}"
                await self.conn.execute(f"DROP TRIGGER IF EXISTS {q(row['tgname'])} ON {table}")

    # --- the Outbox protocol (changes.py) -------------------------------------------------

    async def fetch(self, after: int, limit: int) -> list[OutboxRow]:
        rows = await self.conn.fetch(
            "SELECT id, at, txid, schema_name, table_name, operation, db_user, db_role,"
            f" old::text AS old, new::text AS new FROM {self.table} WHERE id > $1"
            " ORDER BY id LIMIT $2",
            after,
            limit,
        )
        return [
            OutboxRow(
                id=row["id"],
                table=row["table_name"],
                operation=row["operation"],
                old=loads(row["old"]),
                new=loads(row["new"]),
                at=row["at"],
                schema=row["schema_name"],
                user=row["db_user"],
                role=row["db_role"],
                txid=row["txid"],
            )
            for row in rows
        ]

    async def delete(self, rows: Sequence[OutboxRow]) -> None:
        # By id, not `id <= last`: a transaction that took a lower id may commit after the read,
        # and its row must stay for the next one.
        await self.conn.execute(
            f"DELETE FROM {self.table} WHERE id = ANY($1::bigint[])", [r.id for r in rows]
        )

    def layout(self, table: str) -> Layout:
        return self._layouts.get(table, NO_LAYOUT)


ROLES = ("insert", "update", "delete", "notify")


KIND = PostgresKind()
