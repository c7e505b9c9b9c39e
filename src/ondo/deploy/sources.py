"""`sources:`, `contacts:` and `groups:` in ondo.yaml: parsed strictly, then planned like rules.

```yaml
sources:
  fitbit: {kind: mqtt, url: "mqtt://127.0.0.1:1883", topics: [...]}   # kind-specific keys
contacts:
  bob: {mobile: "ntfy://ondo-bob", email: "mailto://…"}                # channel: Apprise URL
groups:
  alice.family: [carol, dave.mobile]                                    # contacts or channels
```

Each source's settings are checked by its kind (sources/<kind>.py) while the manifest is read,
with errors naming ondo.yaml:LINE; what is stored is the settings the kind returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ondo.actions.notify import url_problem
from ondo.backends.store.repositories.sources import StoredContact, StoredGroup, StoredSource
from ondo.deploy.yamlsrc import Located
from ondo.errors import ConfigError
from ondo.functions.model import NAME_RE
from ondo.sources.base import FieldPath, Settings
from ondo.sources.kinds import KIND_MODULES, source_kind

if TYPE_CHECKING:
    from ondo.deploy.targets import DeployTargets

Change = Literal["create", "update", "unchanged", "delete"]
CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}(\.[a-z0-9][a-z0-9_-]{0,62}){0,3}$")
APPRISE_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class SourceDecl:
    name: str
    kind: str
    settings: Settings  # as the kind validated them
    where: str


@dataclass(frozen=True)
class Directory:
    """Contacts (name -> channel -> Apprise URL) and groups (name -> members) of one manifest."""

    contacts: Mapping[str, Mapping[str, str]]
    groups: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class _ManifestWhere:
    doc: Located
    base: FieldPath
    root: Path

    def error(self, path: FieldPath, message: str) -> ConfigError:
        return self.doc.error((*self.base, *path), message)


def parse_sources(doc: Located, root: Path, raw: Any) -> dict[str, SourceDecl]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise doc.error(("sources",), "sources must be a mapping of name to settings")
    return {name: _source(doc, root, name, spec) for name, spec in raw.items()}


def _source(doc: Located, root: Path, name: Any, spec: Any) -> SourceDecl:
    path: FieldPath = ("sources", name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise doc.error(path, f"source name {name!r} must match {NAME_RE.pattern}")
    if not isinstance(spec, dict):
        raise doc.error(path, "source settings must be a mapping with a `kind:`")
    kind = spec.get("kind")
    if kind is None:
        raise doc.error(path, f"a source needs `kind:`, one of {', '.join(KIND_MODULES)}")
    if not isinstance(kind, str) or kind not in KIND_MODULES:
        raise doc.error(
            (*path, "kind"), f"kind must be one of {', '.join(KIND_MODULES)}, got {kind!r}"
        )
    try:
        implementation = source_kind(kind)
    except ConfigError as exc:
        raise doc.error((*path, "kind"), str(exc)) from None
    settings = {key: value for key, value in spec.items() if key != "kind"}
    validated = implementation.validate(settings, _ManifestWhere(doc, path, root))
    return SourceDecl(name, kind, validated, doc.where(path))


def parse_directory(doc: Located, contacts_raw: Any, groups_raw: Any) -> Directory:
    contacts: dict[str, dict[str, str]] = {}
    if contacts_raw is not None:
        if not isinstance(contacts_raw, dict):
            raise doc.error(("contacts",), "contacts must be a mapping of name to channels")
        for name, channels in contacts_raw.items():
            contacts[name] = contact_channels(doc, name, channels)
    groups: dict[str, tuple[str, ...]] = {}
    if groups_raw is not None:
        if not isinstance(groups_raw, dict):
            raise doc.error(("groups",), "groups must be a mapping of name to a list of contacts")
        for name, members in groups_raw.items():
            groups[name] = group_members(doc, name, members)
    return Directory(contacts, groups)


class Where(Protocol):
    """Where a bad field is reported: ondo.yaml file:line at deploy, the body's field in the
    API (`ondo contacts set`), so both check contacts and groups with the same code."""

    def error(self, path: FieldPath, message: str) -> Exception: ...


def contact_channels(doc: Where, name: Any, channels: Any) -> dict[str, str]:
    path: FieldPath = ("contacts", name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise doc.error(path, f"contact name {name!r} must match {NAME_RE.pattern}")
    if not isinstance(channels, dict) or not channels:
        raise doc.error(path, 'a contact is a mapping of channel to address: {mobile: "ntfy://…"}')
    for channel, url in channels.items():
        if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
            raise doc.error((*path, channel), f"channel name must match {CHANNEL_RE.pattern}")
        if not isinstance(url, str) or not APPRISE_URL_RE.match(url):
            raise doc.error(
                (*path, channel),
                f"must be an Apprise URL such as ntfy://topic or mailto://…, got {url!r}",
            )
        problem = url_problem(url)  # when Apprise is installed: can it send there?
        if problem is not None:
            raise doc.error((*path, channel), problem)
    return {str(k): str(v) for k, v in channels.items()}


def group_members(doc: Where, name: Any, members: Any) -> tuple[str, ...]:
    path: FieldPath = ("groups", name)
    if not isinstance(name, str) or not GROUP_RE.match(name):
        raise doc.error(path, f"group name {name!r} must match {GROUP_RE.pattern}")
    if not isinstance(members, list) or not members:
        raise doc.error(path, "a group is a non-empty list of contacts: [carol, dave.mobile]")
    for index, member in enumerate(members):
        contact, _, channel = member.partition(".") if isinstance(member, str) else ("", "", "")
        if not NAME_RE.match(contact) or (channel and not CHANNEL_RE.match(channel)):
            raise doc.error((*path, index), f"must be a contact or contact.channel, got {member!r}")
    return tuple(members)


# --- planning ---------------------------------------------------------------------------


class SourceTargets(Protocol):
    """What deploy uses to read and change sources, contacts and groups (sources/book.py)."""

    async def sources_in(self, namespace: str) -> list[StoredSource]: ...

    async def put_source(self, source: StoredSource) -> None: ...

    async def delete_source(self, namespace: str, name: str) -> None: ...

    async def contacts_in(self, namespace: str) -> list[StoredContact]: ...

    async def put_contact(self, contact: StoredContact) -> None: ...

    async def delete_contact(self, namespace: str, name: str) -> None: ...

    async def groups_in(self, namespace: str) -> list[StoredGroup]: ...

    async def put_group(self, group: StoredGroup) -> None: ...

    async def delete_group(self, namespace: str, name: str) -> None: ...


Stored = StoredSource | StoredContact | StoredGroup


@dataclass(frozen=True)
class DirectoryStep:
    """One source, contact or group to create, update or delete."""

    kind: str  # "source", "contact" or "group"
    name: str
    change: Change
    detail: str
    namespace: str
    wanted: Stored | None  # None: delete
    current_app: str | None = None  # the app that owns it today (take-over checks)

    async def apply(self, targets: DeployTargets) -> dict[str, Any]:
        book = targets.sources
        if self.change == "unchanged":
            return {}
        if self.change == "delete":
            delete = {
                "source": book.delete_source,
                "contact": book.delete_contact,
                "group": book.delete_group,
            }[self.kind]
            await delete(self.namespace, self.name)
        elif isinstance(self.wanted, StoredSource):
            await book.put_source(self.wanted)
        elif isinstance(self.wanted, StoredContact):
            await book.put_contact(self.wanted)
        elif isinstance(self.wanted, StoredGroup):
            await book.put_group(self.wanted)
        return {}


async def plan_directory(
    book: SourceTargets,
    sources: Mapping[str, SourceDecl],
    directory: Directory,
    app: str,
    namespace: str,
    now: float,
) -> list[DirectoryStep]:
    """Steps for the manifest's sources, contacts and groups; deployed ones of this app that
    the manifest no longer declares are deleted."""
    contacts = {c.name: c for c in await book.contacts_in(namespace)}
    check_members(directory, contacts)
    wanted: list[Stored] = [
        StoredSource(namespace, d.name, d.kind, d.settings, app, now) for d in sources.values()
    ]
    wanted += [
        StoredContact(namespace, name, dict(channels), app)
        for name, channels in directory.contacts.items()
    ]
    wanted += [
        StoredGroup(namespace, name, members, app) for name, members in directory.groups.items()
    ]
    steps = [
        *_diff("source", await book.sources_in(namespace), wanted, app, namespace),
        *_diff("contact", list(contacts.values()), wanted, app, namespace),
        *_diff("group", await book.groups_in(namespace), wanted, app, namespace),
    ]
    return steps


def check_members(directory: Directory, deployed: Mapping[str, StoredContact]) -> None:
    for group, members in directory.groups.items():
        for member in members:
            contact, _, channel = member.partition(".")
            channels = directory.contacts.get(contact)
            if channels is None and contact in deployed:
                channels = deployed[contact].channels
            if channels is None:
                raise ConfigError(
                    f"group {group!r}: contact {contact!r} is not declared under contacts:"
                    " in this ondo.yaml nor deployed"
                )
            if channel and channel not in channels:
                raise ConfigError(
                    f"group {group!r}: contact {contact!r} has no channel {channel!r}"
                    f" (it has {', '.join(sorted(channels))})"
                )


def _diff(
    kind: str, current: Iterable[Stored], wanted: Iterable[Stored], app: str, namespace: str
) -> list[DirectoryStep]:
    ours = [w for w in wanted if _kind_of(w) == kind]
    now = {c.name: c for c in current}
    steps: list[DirectoryStep] = []
    for item in sorted(ours, key=lambda w: w.name):
        old = now.get(item.name)
        if old is None:
            steps.append(DirectoryStep(kind, item.name, "create", _describe(item), namespace, item))
        elif _comparable(old) == _comparable(item) and old.app == app:
            steps.append(DirectoryStep(kind, item.name, "unchanged", "", namespace, item, old.app))
        else:
            detail = "moves to app " + repr(app) if _comparable(old) == _comparable(item) else ""
            steps.append(
                DirectoryStep(
                    kind, item.name, "update", detail or "changed", namespace, item, old.app
                )
            )
    names = {w.name for w in ours}
    for old in sorted(now.values(), key=lambda c: c.name):
        if old.app == app and old.name not in names:
            steps.append(
                DirectoryStep(
                    kind, old.name, "delete", "no longer in ondo.yaml", namespace, None, old.app
                )
            )
    return steps


def _kind_of(item: Stored) -> str:
    if isinstance(item, StoredSource):
        return "source"
    return "contact" if isinstance(item, StoredContact) else "group"


def _comparable(item: Stored) -> Any:
    if isinstance(item, StoredSource):
        return (item.kind, dict(item.spec))
    if isinstance(item, StoredContact):
        return dict(item.channels)
    return tuple(item.members)


def _describe(item: Stored) -> str:
    if isinstance(item, StoredSource):
        return f"new {item.kind} source"
    if isinstance(item, StoredContact):
        return "channels: " + ", ".join(sorted(item.channels))
    return f"{len(item.members)} members"


def with_detail(step: DirectoryStep, detail: str) -> DirectoryStep:
    return replace(step, detail=detail)
