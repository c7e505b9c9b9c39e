"""The repositories of every domain over one `Sql`: what a transaction (or autocommit) offers
the domain. Each repository is built on first use; each domain adds its own here."""

from __future__ import annotations

from functools import cached_property

from ondo.backends.store.base import Sql
from ondo.backends.store.sql.actions import SqlJobRepository
from ondo.backends.store.sql.audit import SqlAuditRepository
from ondo.backends.store.sql.blobs import SqlBlobRepository
from ondo.backends.store.sql.events import SqlEventIndexRepository
from ondo.backends.store.sql.functions import SqlFunctionRepository, SqlInvocationRepository
from ondo.backends.store.sql.grants import SqlGrantRepository
from ondo.backends.store.sql.keys import SqlPlatformKeyRepository
from ondo.backends.store.sql.policies import SqlPolicyRepository
from ondo.backends.store.sql.retention import SqlWatermarkRepository
from ondo.backends.store.sql.rules import (
    SqlEnforcementRepository,
    SqlRuleRepository,
    SqlWindowRepository,
)
from ondo.backends.store.sql.secrets import SqlSecretRepository
from ondo.backends.store.sql.sources import SqlDirectoryRepository, SqlSourceRepository
from ondo.backends.store.sql.tokens import SqlTokenRepository


class SqlRepositories:
    """`Repositories` for one `Sql` (see base.py)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    @cached_property
    def rules(self) -> SqlRuleRepository:
        return SqlRuleRepository(self._sql)

    @cached_property
    def windows(self) -> SqlWindowRepository:
        return SqlWindowRepository(self._sql)

    @cached_property
    def enforcements(self) -> SqlEnforcementRepository:
        return SqlEnforcementRepository(self._sql)

    @cached_property
    def jobs(self) -> SqlJobRepository:
        return SqlJobRepository(self._sql)

    async def notify(self, topic: str, key: str) -> None:
        await self._sql.notify(topic, key)

    @cached_property
    def functions(self) -> SqlFunctionRepository:
        return SqlFunctionRepository(self._sql)

    @cached_property
    def watermarks(self) -> SqlWatermarkRepository:
        return SqlWatermarkRepository(self._sql)

    @cached_property
    def invocations(self) -> SqlInvocationRepository:
        return SqlInvocationRepository(self._sql)

    @cached_property
    def tokens(self) -> SqlTokenRepository:
        return SqlTokenRepository(self._sql)

    @cached_property
    def policies(self) -> SqlPolicyRepository:
        return SqlPolicyRepository(self._sql)

    @cached_property
    def event_index(self) -> SqlEventIndexRepository:
        return SqlEventIndexRepository(self._sql)

    @cached_property
    def blobs(self) -> SqlBlobRepository:
        return SqlBlobRepository(self._sql)

    @cached_property
    def sources(self) -> SqlSourceRepository:
        return SqlSourceRepository(self._sql)

    @cached_property
    def directory(self) -> SqlDirectoryRepository:
        return SqlDirectoryRepository(self._sql)

    @cached_property
    def audit(self) -> SqlAuditRepository:
        return SqlAuditRepository(self._sql)

    @cached_property
    def platform_keys(self) -> SqlPlatformKeyRepository:
        return SqlPlatformKeyRepository(self._sql)

    @cached_property
    def secrets(self) -> SqlSecretRepository:
        return SqlSecretRepository(self._sql)

    @cached_property
    def grants(self) -> SqlGrantRepository:
        return SqlGrantRepository(self._sql)
