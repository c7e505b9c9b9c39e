"""Every migration of the PostgreSQL store, in the order they apply; never edit an applied one.

Each domain has its section, the PostgreSQL form of the tables in sqlite/migrations.py: the
same table and column names (the repositories' SQL is shared), `DOUBLE PRECISION` for times,
`BIGINT` for counts and ids (`GENERATED ALWAYS AS IDENTITY` where SQLite has AUTOINCREMENT),
`BYTEA` for blobs, `TEXT` for JSON. A script may hold several statements.
"""

from __future__ import annotations

from ondo.backends.store.base import Migration

MIGRATIONS: list[Migration] = [
    # --- tokens (security/tokens.py) --------------------------------------------------
    (
        "tokens-0001",
        """
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY, principal TEXT NOT NULL, namespace TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)
        """,
    ),
    # --- functions and invocations (sqlite: functions-0001 … 0005) --------------------
    (
        "functions-0001",
        """
        CREATE TABLE functions (
            namespace TEXT NOT NULL, name TEXT NOT NULL, current_version BIGINT NOT NULL,
            app TEXT, created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, name));
        CREATE TABLE function_versions (
            namespace TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL,
            config TEXT NOT NULL, code_hash TEXT NOT NULL, layer_hash TEXT,
            app TEXT, created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, name, version));
        CREATE TABLE invocations (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, function TEXT NOT NULL,
            version BIGINT NOT NULL, status TEXT NOT NULL, mode TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
            cold BIGINT NOT NULL DEFAULT 0, init_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            max_memory_mb DOUBLE PRECISION NOT NULL DEFAULT 0, error TEXT, result TEXT,
            logs TEXT, trigger TEXT, payload BYTEA,
            resumed BIGINT NOT NULL DEFAULT 0, attempt BIGINT NOT NULL DEFAULT 1);
        CREATE INDEX invocations_by_function ON invocations (namespace, function, created_at);
        CREATE INDEX invocations_pending ON invocations (status)
            WHERE status IN ('queued', 'running');
        CREATE INDEX invocations_by_finish ON invocations (namespace, function, finished_at);
        CREATE INDEX invocations_by_created ON invocations (created_at)
        """,
    ),
]
