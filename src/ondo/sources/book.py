"""Sources, contacts and groups as deployed: what `ondo deploy` reads and writes (deploy/
sources.py's `SourceTargets`), over the store's repositories. Each write is announced on the
change feed by the repository, so every process's supervisor follows it."""

from __future__ import annotations

from ondo.backends.store.repositories.sources import StoredContact, StoredGroup, StoredSource
from ondo.backends.store.store import Store


class SourceBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def sources_in(self, namespace: str) -> list[StoredSource]:
        return [s for s in await self.store.repos.sources.all() if s.namespace == namespace]

    async def put_source(self, source: StoredSource) -> None:
        await self.store.repos.sources.put(source)

    async def delete_source(self, namespace: str, name: str) -> None:
        async with self.store.transaction() as uow:  # the source and its state go together
            await uow.sources.delete(namespace, name)

    async def contacts_in(self, namespace: str) -> list[StoredContact]:
        return await self.store.repos.directory.contacts(namespace)

    async def put_contact(self, contact: StoredContact) -> None:
        await self.store.repos.directory.put_contact(contact)

    async def delete_contact(self, namespace: str, name: str) -> None:
        await self.store.repos.directory.delete_contact(namespace, name)

    async def groups_in(self, namespace: str) -> list[StoredGroup]:
        return await self.store.repos.directory.groups(namespace)

    async def put_group(self, group: StoredGroup) -> None:
        await self.store.repos.directory.put_group(group)

    async def delete_group(self, namespace: str, name: str) -> None:
        await self.store.repos.directory.delete_group(namespace, name)
