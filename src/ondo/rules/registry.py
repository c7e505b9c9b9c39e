"""Stored rules: one row per (namespace, name) in the platform's SQLite store.

A row keeps the rule's text (when it was written as a sentence) and its compiled JSON form, so a
restart reloads rules without re-reading ondo.yaml, and `show` can print both.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

from ondo.backends.store.repositories.rules import StoredRule
from ondo.backends.store.sqlite import SqliteDatabase
from ondo.backends.store.sqlite.migrations import MIGRATIONS
from ondo.errors import NotFound


def _from_row(row: sqlite3.Row) -> StoredRule:
    return StoredRule(
        namespace=row["namespace"],
        name=row["name"],
        owner=row["owner"],
        text=row["text"],
        spec=json.loads(row["spec"]),
        enabled=bool(row["enabled"]),
        app=row["app"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        disabled_reason=row["disabled_reason"],
    )


class RuleRegistry:
    """CRUD over the `rules` table; the engine keeps its in-memory index in step with it."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        db.migrate(MIGRATIONS)  # every domain's: idempotent

    def find(self, namespace: str, name: str) -> StoredRule | None:
        row = self.db.query_one(
            "SELECT * FROM rules WHERE namespace = ? AND name = ?", (namespace, name)
        )
        return _from_row(row) if row is not None else None

    def get(self, namespace: str, name: str) -> StoredRule:
        found = self.find(namespace, name)
        if found is None:
            raise NotFound(
                f"rule {name!r} does not exist in namespace {namespace!r}; see `ondo rules list`"
            )
        return found

    def in_namespace(self, namespace: str) -> list[StoredRule]:
        rows = self.db.query("SELECT * FROM rules WHERE namespace = ? ORDER BY name", (namespace,))
        return [_from_row(r) for r in rows]

    def all(self) -> list[StoredRule]:
        return [_from_row(r) for r in self.db.query("SELECT * FROM rules ORDER BY namespace, name")]

    def names_of_app(self, namespace: str, app: str) -> list[str]:
        rows = self.db.query(
            "SELECT name FROM rules WHERE namespace = ? AND app = ? ORDER BY name", (namespace, app)
        )
        return [r["name"] for r in rows]

    def put(self, conn: sqlite3.Connection, rule: StoredRule, now: float) -> StoredRule:
        """Insert or replace `rule` inside the caller's transaction; keeps created_at."""
        old = conn.execute(
            "SELECT created_at FROM rules WHERE namespace = ? AND name = ?",
            (rule.namespace, rule.name),
        ).fetchone()
        stored = replace(rule, created_at=old[0] if old else now, updated_at=now)
        conn.execute(
            "INSERT OR REPLACE INTO rules (namespace, name, owner, text, spec, enabled, app,"
            " created_at, updated_at, disabled_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.namespace,
                stored.name,
                stored.owner,
                stored.text,
                json.dumps(stored.spec, sort_keys=True),
                int(stored.enabled),
                stored.app,
                stored.created_at,
                stored.updated_at,
                stored.disabled_reason,
            ),
        )
        return stored

    def delete(self, conn: sqlite3.Connection, namespace: str, name: str) -> None:
        conn.execute("DELETE FROM rules WHERE namespace = ? AND name = ?", (namespace, name))

    def set_enabled(
        self,
        conn: sqlite3.Connection,
        namespace: str,
        name: str,
        enabled: bool,
        now: float,
        reason: str | None = None,
    ) -> None:
        """Enable or disable; `reason`: why ondo disabled it (cleared by any other change)."""
        conn.execute(
            "UPDATE rules SET enabled = ?, disabled_reason = ?, updated_at = ?"
            " WHERE namespace = ? AND name = ?",
            (int(enabled), reason, now, namespace, name),
        )
