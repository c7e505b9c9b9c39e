"""Contacts and groups (the notify action's address book) managed without a deploy: list them
with addresses masked, set or delete a contact, set or delete a group. The checks are those of
ondo.yaml (deploy/sources.py). What is made here belongs to no app (app None): a deploy that
declares the same name adopts it, as for functions made through the API. Changing or deleting
what an app declared is refused: that app's next deploy would put it back."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.actions.contacts import mask_address
from ondo.api.http import answer, json_body, namespace_of, platform_of
from ondo.backends.store.repositories.sources import StoredContact, StoredGroup
from ondo.deploy.sources import (
    Directory,
    SourceTargets,
    check_members,
    contact_channels,
    group_members,
)
from ondo.errors import Conflict, NotFound, ValidationError
from ondo.functions.model import NAME_RE
from ondo.sources.base import FieldPath


class _Body:
    """Names the bad field of the request as deploy names it in ondo.yaml: `contacts.bob.email`."""

    def error(self, path: FieldPath, message: str) -> ValidationError:
        return ValidationError(f"{'.'.join(str(p) for p in path)}: {message}")


def _book(request: Request) -> SourceTargets:
    return platform_of(request).deploy_targets.sources


def _contact_json(contact: StoredContact) -> dict[str, Any]:
    channels = {name: mask_address(url) for name, url in sorted(contact.channels.items())}
    return {"name": contact.name, "channels": channels, "app": contact.app}


def _group_json(group: StoredGroup) -> dict[str, Any]:
    return {"name": group.name, "members": list(group.members), "app": group.app}


def _not_an_apps(kind: str, name: str, app: str | None) -> None:
    if app is not None:
        raise Conflict(
            f"{kind} {name!r} belongs to app {app!r}: change it in that app's ondo.yaml"
            " (a deploy of it would put it back)"
        )


def _body_field(body: Any, key: str, example: str) -> Any:
    if not isinstance(body, dict) or set(body) != {key}:
        raise ValidationError(f"body must be {example}")
    return body[key]


async def list_contacts(request: Request) -> JSONResponse:
    book, namespace = _book(request), namespace_of(request)
    contacts = sorted(await book.contacts_in(namespace), key=lambda c: c.name)
    groups = sorted(await book.groups_in(namespace), key=lambda g: g.name)
    return answer(
        {
            "contacts": [_contact_json(c) for c in contacts],
            "groups": [_group_json(g) for g in groups],
        }
    )


async def put_contact(request: Request) -> JSONResponse:
    book, namespace, name = _book(request), namespace_of(request), request.path_params["name"]
    raw = _body_field(await json_body(request), "channels", '{"channels": {"mobile": "ntfy://…"}}')
    if not NAME_RE.match(name):
        raise ValidationError(f"contact name {name!r} must match {NAME_RE.pattern}")
    channels = contact_channels(_Body(), name, raw)
    old = next((c for c in await book.contacts_in(namespace) if c.name == name), None)
    if old is not None:
        _not_an_apps("contact", name, old.app)
    for group in await book.groups_in(namespace):  # a group may name one of its channels
        for member in group.members:
            who, _, channel = member.partition(".")
            if who == name and channel and channel not in channels:
                raise Conflict(
                    f"group {group.name!r} lists {member!r}: keep channel {channel!r}"
                    " or change the group first"
                )
    contact = StoredContact(namespace, name, channels, None)
    await book.put_contact(contact)
    return answer(_contact_json(contact), 200 if old is not None else 201)


async def delete_contact(request: Request) -> JSONResponse:
    book, namespace, name = _book(request), namespace_of(request), request.path_params["name"]
    old = next((c for c in await book.contacts_in(namespace) if c.name == name), None)
    if old is None:
        raise NotFound(f"no contact {name!r}; see `ondo contacts list`")
    _not_an_apps("contact", name, old.app)
    listing = sorted(
        g.name
        for g in await book.groups_in(namespace)
        if any(m.partition(".")[0] == name for m in g.members)
    )
    if listing:
        raise Conflict(
            f"contact {name!r} is still a member of group(s) {', '.join(listing)};"
            " change or delete those groups first"
        )
    await book.delete_contact(namespace, name)
    return answer({"deleted": name})


async def put_group(request: Request) -> JSONResponse:
    book, namespace, name = _book(request), namespace_of(request), request.path_params["name"]
    raw = _body_field(await json_body(request), "members", '{"members": ["carol", "dave.mobile"]}')
    members = group_members(_Body(), name, raw)
    contacts = {c.name: c for c in await book.contacts_in(namespace)}
    check_members(Directory({}, {name: members}), contacts)  # each member exists, as deploy
    old = next((g for g in await book.groups_in(namespace) if g.name == name), None)
    if old is not None:
        _not_an_apps("group", name, old.app)
    group = StoredGroup(namespace, name, members, None)
    await book.put_group(group)
    return answer(_group_json(group), 200 if old is not None else 201)


async def delete_group(request: Request) -> JSONResponse:
    book, namespace, name = _book(request), namespace_of(request), request.path_params["name"]
    old = next((g for g in await book.groups_in(namespace) if g.name == name), None)
    if old is None:
        raise NotFound(f"no group {name!r}; see `ondo contacts list`")
    _not_an_apps("group", name, old.app)
    await book.delete_group(namespace, name)
    return answer({"deleted": name})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/contacts", list_contacts, methods=["GET"]),
        Route("/v1/contacts/{name}", put_contact, methods=["PUT"]),
        Route("/v1/contacts/{name}", delete_contact, methods=["DELETE"]),
        Route("/v1/groups/{name}", put_group, methods=["PUT"]),
        Route("/v1/groups/{name}", delete_group, methods=["DELETE"]),
    ]
