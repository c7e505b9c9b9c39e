"""The store contract: SQL executors, transactions, migrations and the change feed.

Layers (each a small interface, one file per backend, like the bus):

- `Database` — one engine (sqlite/engine.py, postgres/engine.py): an autocommit `Sql`, and
  transactions that yield a transaction-bound `Sql`. It knows SQL and its driver, nothing of
  ondo's domains. SQL is written once, in SQLite-and-PostgreSQL-compatible form with `?`
  placeholders (the PostgreSQL engine numbers them); schemas and migrations are per backend.
- Repositories (backends/store/repositories/ for their Protocols and records, sql/ for their
  one implementation) — what the domain calls: it never writes SQL nor sees a connection.
- `Store` (store.py) — a database with its repositories: `store.repos` runs each call in its
  own transaction; `store.atomic(body)` runs `body(uow)` in one transaction, retrying when it
  lost to a concurrent one, so the rule decision (window state, enforcement record, action
  jobs) commits whole or not at all.

The change feed: `notify(topic, key)` in a transaction reaches every subscriber — in this
process and, on PostgreSQL, in every process on the same database — once the transaction
commits; a subscriber then drops what it cached under that key. Key `*` means "everything in
the topic" (sent when notifications may have been missed, e.g. after a reconnect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ondo.backends.store.repositories.actions import JobRepository
    from ondo.backends.store.repositories.audit import AuditRepository
    from ondo.backends.store.repositories.blobs import BlobRepository
    from ondo.backends.store.repositories.events import EventIndexRepository
    from ondo.backends.store.repositories.functions import (
        FunctionRepository,
        InvocationRepository,
    )
    from ondo.backends.store.repositories.grants import GrantRepository
    from ondo.backends.store.repositories.keys import PlatformKeyRepository
    from ondo.backends.store.repositories.policies import PolicyRepository
    from ondo.backends.store.repositories.retention import WatermarkRepository
    from ondo.backends.store.repositories.rules import (
        EnforcementRepository,
        RuleRepository,
        WindowRepository,
    )
    from ondo.backends.store.repositories.secrets import SecretRepository
    from ondo.backends.store.repositories.sources import DirectoryRepository, SourceRepository
    from ondo.backends.store.repositories.tokens import TokenRepository

Dialect = Literal["sqlite", "postgres"]
# SQLite runs one writer at a time, so its transactions are serializable whatever is asked.
Isolation = Literal["read committed", "repeatable read", "serializable"]
Params = Sequence[Any]
Migration = tuple[str, str]  # (unique name, SQL script with statements separated by ';')
ChangeCallback = Callable[[str], None]  # called with the changed key (or "*")
EVERYTHING = "*"


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Sql(Protocol):
    """Statements on one connection: in a transaction, or each committed on its own."""

    dialect: Dialect

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row."""
        ...

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None when there is no row."""
        ...

    async def notify(self, topic: str, key: str) -> None:
        """Tell subscribers of `topic` that `key` changed, once this transaction commits."""
        ...


class Database(Protocol):
    """One storage engine: connections, transactions, migrations and the change feed."""

    dialect: Dialect
    cluster: str
    description: str  # for messages: the URL without its password

    @property
    def sql(self) -> Sql:
        """Autocommit: each statement is its own transaction."""
        ...

    def transaction(
        self, isolation: Isolation = "read committed"
    ) -> AbstractAsyncContextManager[Sql]:
        """BEGIN … COMMIT around the block, rolled back if it raises."""
        ...

    def is_conflict(self, exc: BaseException) -> bool:
        """True when `exc` means the transaction lost to a concurrent one and may be retried."""
        ...

    def subscribe(self, topic: str, callback: ChangeCallback) -> Callable[[], None]:
        """Call `callback(key)` for each change in `topic`; returns the function that detaches."""
        ...

    async def open(self) -> None:
        """Connect and apply this backend's migrations not applied yet (idempotent)."""
        ...

    async def close(self) -> None: ...


class Repositories(Protocol):
    """The repositories of every domain, bound to one `Sql` (a transaction, or autocommit).

    Each domain's repository Protocol and record types live in backends/store/repositories/;
    sql/unit.py builds them. Attributes are added here as domains move onto the store.
    """

    @property
    def rules(self) -> RuleRepository:
        """Rule definitions (the rules engine's book)."""
        ...

    @property
    def windows(self) -> WindowRepository:
        """Rule window state: counts, throttles, `for D` timers."""
        ...

    @property
    def enforcements(self) -> EnforcementRepository:
        """Rule decisions and the dispatcher's skipped events."""
        ...

    @property
    def jobs(self) -> JobRepository:
        """Action jobs (the action queue)."""
        ...

    @property
    def watermarks(self) -> WatermarkRepository:
        """What retention has deleted up to, per kind of record."""
        ...

    async def notify(self, topic: str, key: str) -> None:
        """Tell every cache of `topic` (in every process) that `key` changed, at commit."""
        ...

    @property
    def functions(self) -> FunctionRepository: ...

    @property
    def invocations(self) -> InvocationRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def policies(self) -> PolicyRepository:
        """Per-resource policies of principals (security/policy.py)."""
        ...

    @property
    def event_index(self) -> EventIndexRepository:
        """Where each event is in the bus's log (for a bus that asks the store to index it)."""
        ...

    @property
    def blobs(self) -> BlobRepository:
        """Code bundles and dependency layers (only on a store shared by several processes)."""
        ...

    @property
    def sources(self) -> SourceRepository:
        """Sources as deployed, and each source's saved state."""
        ...

    @property
    def directory(self) -> DirectoryRepository:
        """Contacts and groups (whom the notify action reaches)."""
        ...

    @property
    def audit(self) -> AuditRepository:
        """The hash-chained audit log (security/audit.py)."""
        ...

    @property
    def platform_keys(self) -> PlatformKeyRepository:
        """The platform's own keys (the one signing functions' tokens)."""
        ...

    @property
    def secrets(self) -> SecretRepository:
        """Secrets, encrypted (security/secrets.py decrypts them)."""
        ...

    @property
    def grants(self) -> GrantRepository:
        """Consent grants of data subjects (security/consent.py)."""
        ...


RepositoryFactory = Callable[[Sql], Repositories]
Body = Callable[[Repositories], Awaitable[Any]]
