"""Sources, contacts and groups as deployed, and each source's own small state: the
repositories' contract and their records.

A source's spec is the JSON its kind validated at deploy time (sources/<kind>.py); the store
keeps it opaque. State is a few named values per source that must outlive the process: an
outbox position, the last tick of a schedule, an MQTT session id. Changes to sources, contacts
and groups are announced on the change feed (SOURCES_TOPIC, DIRECTORY_TOPIC) with key
`namespace/name`, so every process's supervisor and directory follow them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SOURCES_TOPIC = "sources"
DIRECTORY_TOPIC = "directory"


@dataclass(frozen=True)
class StoredSource:
    namespace: str
    name: str
    kind: str
    spec: Mapping[str, Any]  # the kind's validated settings (JSON)
    app: str | None = None
    updated_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class StoredContact:
    """A person or system and their named channels: `{"mobile": "ntfy://…", "email": …}`."""

    namespace: str
    name: str
    channels: Mapping[str, str] = field(default_factory=dict)
    app: str | None = None


@dataclass(frozen=True)
class StoredGroup:
    """A named list of contacts (and channels of contacts: `bob.mobile`)."""

    namespace: str
    name: str
    members: tuple[str, ...] = ()
    app: str | None = None


class SourceRepository(Protocol):
    async def put(self, source: StoredSource) -> None:
        """Create or replace the source (and announce it on the change feed)."""

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete the source and its state; False if there was none."""

    async def get(self, namespace: str, name: str) -> StoredSource | None: ...

    async def all(self) -> list[StoredSource]:
        """Every source of every namespace, by namespace and name."""

    async def state(self, namespace: str, name: str) -> dict[str, str]:
        """The source's saved state values, by key."""

    async def save_state(self, namespace: str, name: str, key: str, value: str, now: float) -> None:
        """Set one state value (kept until the source is deleted)."""


class DirectoryRepository(Protocol):
    """Contacts and groups (the notify action's address book)."""

    async def put_contact(self, contact: StoredContact) -> None: ...

    async def delete_contact(self, namespace: str, name: str) -> bool: ...

    async def contacts(self, namespace: str) -> list[StoredContact]: ...

    async def put_group(self, group: StoredGroup) -> None: ...

    async def delete_group(self, namespace: str, name: str) -> bool: ...

    async def groups(self, namespace: str) -> list[StoredGroup]: ...

    async def namespaces(self) -> list[str]:
        """The namespaces that have contacts or groups (the notify directory loads them)."""
