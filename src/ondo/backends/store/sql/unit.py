"""The repositories of every domain over one `Sql`: what a transaction (or autocommit) offers
the domain. Each repository is built on first use; each domain adds its own here."""

from __future__ import annotations

from ondo.backends.store.base import Sql


class SqlRepositories:
    """`Repositories` for one `Sql` (see base.py)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def notify(self, topic: str, key: str) -> None:
        await self._sql.notify(topic, key)
