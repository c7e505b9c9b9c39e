"""`kind: postgres` — change capture on chosen tables of the user's PostgreSQL database.

On every start, ondo installs (idempotently) one trigger function and one trigger per watched
table. The trigger writes each inserted, updated or deleted row to the outbox table (old and new
values as JSONB with the excluded columns already removed, the changed columns, the database
user, the transaction id, the time) and notifies the channel `SCHEMA.OUTBOX`; ondo listens and
drains the outbox in order (changes.py). Exclusion and the `columns` filter happen in the
trigger, so excluded values never leave the database and an update of unwatched columns writes
nothing. Tables the settings no longer name lose their trigger at the next start.

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

from ondo.errors import ConfigError
from ondo.sources.base import Settings, Where, no_unknown_keys
from ondo.sources.changes import (
    DEFAULT_OUTBOX,
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
MAX_OUTBOX_NAME = 54  # + "_capture" stays within PostgreSQL's 63-character names
OUTBOX_COLUMNS = [
    "id", "at", "txid", "schema_name", "table_name", "operation",
    "db_user", "db_role", "changed", "old", "new",
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
            raise ConfigError(
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
                    await asyncio.wait_for(wake.wait(), spec["poll"])
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
    """The outbox table, its trigger function and the triggers, in the user's database."""

    def __init__(self, conn: asyncpg.Connection, schema: str, name: str) -> None:
        self.conn = conn
        self.schema = schema
        self.name = name
        self.table = f"{q(schema)}.{q(name)}"
        self.function = f"{q(schema)}.{q(name + '_capture')}"
        self.trigger = f"{name}_capture"
        self.channel = f"{schema}.{name}"
        self._keys: dict[str, list[str]] = {}

    async def install(self, tables: Sequence[TableSettings], where: str) -> None:
        """Create or update the outbox, the function and the triggers, after checking that
        every named table and column exists (ConfigError naming the first that does not)."""
        columns = await self._columns([t.name for t in tables])
        for table in tables:
            check_columns(table, columns.get(table.name, []), where)
        async with self.conn.transaction():
            # Two processes starting the same source at once would race on CREATE.
            await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.channel)
            await self.conn.execute(self._create_outbox())
            await self._check_outbox()
            await self.conn.execute(self._create_function())
            for table in tables:
                await self.conn.execute(self._create_trigger(table))
            await self._drop_stale_triggers({t.name for t in tables})
        self._keys = await self._primary_keys([t.name for t in tables])

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
            changed text[] NOT NULL,
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

    def _create_function(self) -> str:
        # TG_ARGV[0]: the excluded columns, TG_ARGV[1]: the watched ones ('{}': every one).
        return f"""
        CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger
        LANGUAGE plpgsql AS $capture$
        DECLARE
            excluded text[] := TG_ARGV[0]::text[];
            watched text[] := TG_ARGV[1]::text[];
            old_j jsonb;
            new_j jsonb;
            changed text[];
        BEGIN
            IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD) - excluded; END IF;
            IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW) - excluded; END IF;
            -- the columns in table order: every one for an insert or a delete, the changed
            -- ones for an update
            SELECT coalesce(array_agg(c.key ORDER BY c.ord), '{{}}') INTO changed
              FROM json_each(row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))
                   WITH ORDINALITY AS c(key, value, ord)
             WHERE NOT c.key = ANY (excluded)
               AND (TG_OP <> 'UPDATE' OR (old_j -> c.key) IS DISTINCT FROM (new_j -> c.key));
            IF TG_OP = 'UPDATE' AND NOT (
                changed && CASE WHEN cardinality(watched) = 0 THEN changed ELSE watched END
            ) THEN
                RETURN NULL;  -- no watched column changed
            END IF;
            INSERT INTO {self.table} (schema_name, table_name, operation, changed, old, new)
                 VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, lower(TG_OP), changed, old_j, new_j);
            PERFORM pg_notify('{self.channel}', '');
            RETURN NULL;
        END
        $capture$"""

    def _create_trigger(self, table: TableSettings) -> str:
        events = " OR ".join(op.upper() for op in table.operations)
        excluded = "{" + ",".join(table.exclude) + "}"
        watched = "{" + ",".join(table.columns) + "}"
        return (
            f"CREATE OR REPLACE TRIGGER {q(self.trigger)} AFTER {events}"
            f" ON {q(self.schema)}.{q(table.name)} FOR EACH ROW"
            f" EXECUTE FUNCTION {self.function}('{excluded}', '{watched}')"
        )

    async def _drop_stale_triggers(self, wanted: set[str]) -> None:
        rows = await self.conn.fetch(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE t.tgname = $1 AND n.nspname = $2",
            self.trigger,
            self.schema,
        )
        for row in rows:
            if row["relname"] not in wanted:
                table = f"{q(self.schema)}.{q(row['relname'])}"
                await self.conn.execute(f"DROP TRIGGER IF EXISTS {q(self.trigger)} ON {table}")

    # --- the Outbox protocol (changes.py) -------------------------------------------------

    async def fetch(self, limit: int) -> list[OutboxRow]:
        rows = await self.conn.fetch(
            "SELECT id, at, txid, schema_name, table_name, operation, db_user, db_role, changed,"
            f" old::text AS old, new::text AS new FROM {self.table} ORDER BY id LIMIT $1",
            limit,
        )
        return [
            OutboxRow(
                id=row["id"],
                table=row["table_name"],
                operation=row["operation"],
                old=loads(row["old"]),
                new=loads(row["new"]),
                changed=list(row["changed"]),
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

    def keys(self, table: str) -> Sequence[str]:
        return self._keys.get(table, ())


KIND = PostgresKind()
