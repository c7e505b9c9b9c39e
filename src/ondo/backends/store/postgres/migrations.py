"""Every migration of the PostgreSQL store, in the order they apply; never edit an applied one.

Each domain has its section, the PostgreSQL form of the tables in sqlite/migrations.py: the
same table and column names (the repositories' SQL is shared), `DOUBLE PRECISION` for times,
`BIGINT` for counts and ids (`GENERATED ALWAYS AS IDENTITY` where SQLite has AUTOINCREMENT),
`BYTEA` for blobs, `TEXT` for JSON. A script may hold several statements.
"""

from __future__ import annotations

from ondo.backends.store.base import Migration

MIGRATIONS: list[Migration] = []
