"""The address book of `notify`: contacts and groups as deployed, resolved to Apprise URLs.

`bob.mobile` is one channel of contact bob, `bob` every channel of bob, `alice.family` a group
(its members are contacts or contact.channel). A group's name wins over contact.channel when
both could be meant. The directory is a cache of the store's contacts and groups, loaded at
start and refreshed by the change feed (DIRECTORY_TOPIC), so rules are checked without awaiting
the store and every process sees another's deploys.

A deploy checks its rules against the directory it is about to deploy: `declared(...)` lays the
manifest's contacts and groups over the stored ones while the rules are planned (the manifest's
win; the app's stored ones it no longer declares are gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from ondo.backends.store.base import EVERYTHING
from ondo.backends.store.repositories.sources import (
    DIRECTORY_TOPIC,
    DirectoryRepository,
    StoredContact,
    StoredGroup,
)
from ondo.errors import OndoError, RuleError

log = logging.getLogger("ondo.actions.contacts")
RELOAD_RETRY_S = 1.0  # after a failed reload from the store
RETRY_S = 1.0  # a reload the store refused is tried again after this long
_EMAIL = re.compile(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


@dataclass(frozen=True)
class Channel:
    """One way to reach one contact: where the message goes (`url`) and how trace shows it."""

    contact: str
    channel: str
    url: str
    role: str = "to"  # to | cc

    @property
    def name(self) -> str:
        return f"{self.contact}.{self.channel}"

    @property
    def masked(self) -> str:
        return mask_address(self.url)


@dataclass(frozen=True)
class Book:
    """One namespace's contacts (name -> channel -> URL) and groups (name -> members)."""

    contacts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    apps: Mapping[tuple[str, str], str | None] = field(default_factory=dict)  # (kind, name)

    def resolve(self, name: str, namespace: str, role: str = "to") -> list[Channel]:
        """The channels a recipient name reaches; RuleError saying what is missing."""
        if name in self.groups:
            found: list[Channel] = []
            for member in self.groups[name]:
                found.extend(self._contact(member, namespace, role, f" (in group {name!r})"))
            return found
        return self._contact(name, namespace, role, "")

    def _contact(self, name: str, namespace: str, role: str, where: str) -> list[Channel]:
        contact, _, channel = name.partition(".")
        channels = self.contacts.get(contact)
        if channels is None:
            raise RuleError(
                f"notify {name}{where}: there is no contact or group {name!r} in namespace"
                f" {namespace!r}; declare it under contacts: or groups: in ondo.yaml"
            )
        if not channel:
            return [Channel(contact, ch, url, role) for ch, url in sorted(channels.items())]
        if channel not in channels:
            raise RuleError(
                f"notify {name}{where}: contact {contact!r} has no channel {channel!r}"
                f" (it has {', '.join(sorted(channels))})"
            )
        return [Channel(contact, channel, channels[channel], role)]


def recipients(book: Book, namespace: str, to: str, cc: Sequence[str]) -> list[Channel]:
    """Every channel of `to` and the copies, each once (the first mention's role wins)."""
    seen: dict[str, Channel] = {}
    for name, role in [(to, "to"), *((c, "cc") for c in cc)]:
        for channel in book.resolve(name, namespace, role):
            seen.setdefault(channel.name, channel)
    return list(seen.values())


def mask_address(url: str) -> str:
    """An address as trace shows it: an e-mail `b***@example.org`, anything else its scheme
    and first character (`ntfy://a***`). Passwords, tokens and paths never show."""
    try:
        parts = urlsplit(url)
        user, host = parts.username, parts.hostname
    except ValueError:
        return "***"
    for key, values in parse_qs(parts.query).items():
        if key.lower() in ("to", "email", "target"):  # where Apprise URLs name the recipient
            found = next((m for v in values if (m := _EMAIL.search(unquote(v)))), None)
            if found is not None:
                return _masked_email(found.group(1), found.group(2))
    if parts.scheme.lower() in ("mailto", "mailtos") and user and host and "." in host:
        return _masked_email(unquote(user), host)  # mailto://bob:secret@example.org
    return f"{parts.scheme}://{(host or '')[:1]}***" if parts.scheme else "***"


def _masked_email(local: str, domain: str) -> str:
    return f"{local[:1]}***@{domain}"


# --- the manifest being deployed ------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """The contacts and groups of an ondo.yaml being planned, for one namespace and app."""

    namespace: str
    app: str
    contacts: Mapping[str, Mapping[str, str]]
    groups: Mapping[str, tuple[str, ...]]

    def over(self, book: Book) -> Book:
        """`book` as it will be once the deploy is applied."""

        def kept(kind: str, name: str) -> bool:
            return book.apps.get((kind, name)) != self.app

        contacts = {n: c for n, c in book.contacts.items() if kept("contact", n)}
        groups = {n: g for n, g in book.groups.items() if kept("group", n)}
        return Book({**contacts, **self.contacts}, {**groups, **self.groups}, book.apps)


_declared: ContextVar[Declared | None] = ContextVar("ondo_declared_directory", default=None)


@contextlib.contextmanager
def declared(
    namespace: str,
    app: str,
    contacts: Mapping[str, Mapping[str, str]],
    groups: Mapping[str, tuple[str, ...]],
) -> Iterator[None]:
    """While planning a deploy: rules are checked against the directory it deploys."""
    token = _declared.set(Declared(namespace, app, contacts, groups))
    try:
        yield
    finally:
        _declared.reset(token)


# --- the cache ---------------------------------------------------------------------------


class Subscribe(Protocol):
    def __call__(self, topic: str, callback: Callable[[str], None]) -> Callable[[], None]: ...


class Directory:
    """Every namespace's contacts and groups, as last read from the store (a Service)."""

    def __init__(self, repo: DirectoryRepository, subscribe: Subscribe) -> None:
        self._repo = repo
        self._subscribe = subscribe
        self._books: dict[str, Book] = {}
        self._pending: set[str] = set()
        self._reloader: asyncio.Task[None] | None = None
        self._detach: Callable[[], None] | None = None

    def book(self, namespace: str) -> Book:
        """The namespace's directory (with a deploy's manifest laid over it while planning)."""
        book = self._books.get(namespace, Book())
        planned = _declared.get()
        return planned.over(book) if planned and planned.namespace == namespace else book

    async def start(self) -> None:
        self._detach = self._subscribe(DIRECTORY_TOPIC, self._heard)
        for namespace in await self._repo.namespaces():
            await self.refresh(namespace)

    async def stop(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None

    async def refresh(self, namespace: str) -> Book:
        contacts = await self._repo.contacts(namespace)
        groups = await self._repo.groups(namespace)
        book = book_of(contacts, groups)
        self._books[namespace] = book
        return book

    def _heard(self, key: str) -> None:
        # "*": notifications may have been missed (a reconnect): read every namespace again.
        self._pending.add(EVERYTHING if key == EVERYTHING else key.partition("/")[0])
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.get_running_loop().create_task(
                self._reload(), name="ondo-directory-reload"
            )

    async def _reload(self) -> None:
        while self._pending:
            namespace = EVERYTHING if EVERYTHING in self._pending else next(iter(self._pending))
            self._pending.discard(namespace)
            try:
                if namespace != EVERYTHING:
                    await self.refresh(namespace)
                    continue
                for each in {*self._books, *await self._repo.namespaces()}:
                    await self.refresh(each)
            except OndoError:
                # As the rule book does: keep it pending and try again, or the cache stays stale.
                log.warning("reloading the contacts of %s failed; retrying", namespace)
                self._pending.add(namespace)
                await asyncio.sleep(RELOAD_RETRY_S)
                self._pending.add(namespace)
                await asyncio.sleep(RETRY_S)


def book_of(contacts: Sequence[StoredContact], groups: Sequence[StoredGroup]) -> Book:
    apps: dict[tuple[str, str], str | None] = {("contact", c.name): c.app for c in contacts}
    apps.update({("group", g.name): g.app for g in groups})
    return Book(
        {c.name: dict(c.channels) for c in contacts},
        {g.name: tuple(g.members) for g in groups},
        apps,
    )
