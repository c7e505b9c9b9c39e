"""The embedded SQLite store: database.py (the tuned connection), engine.py (the async
`Database`), migrations.py (every schema change, in order)."""

from __future__ import annotations

from ondo.backends.store.base import Migration
from ondo.backends.store.sqlite.database import SqliteDatabase, dump_json

__all__ = ["Migration", "SqliteDatabase", "dump_json"]
