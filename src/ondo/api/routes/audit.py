"""The audit log: GET /v1/audit (a caller's own trail, or the namespace's for its user admins)
and GET /v1/audit/verify (the whole chain, the platform admin's: it spans namespaces)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, int_param, namespace_of, platform_of, principal_of, whole_number
from ondo.backends.store.repositories.rules import Enforcement
from ondo.platform import Platform
from ondo.security.audit_anchor import Head
from ondo.security.policy import Permission, allows
from ondo.security.tokens import Principal

ME = "@me"  # `about=@me`: the caller ('@' is in no principal's name)


async def list_audit(request: Request) -> JSONResponse:
    """Entries in chain order, newest `limit` (or the first `limit` after `after`). A caller
    that may not manage users sees only entries it made or that are about it; with `about`,
    the rule decisions about events whose subject it names come too."""
    platform, caller = platform_of(request), principal_of(request)
    namespace = namespace_of(request)
    params = request.query_params
    about = _subject(params.get("about"), caller)
    everyone = allows(caller, Permission.USERS)
    raw_after = params.get("after")
    entries = await platform.store.repos.audit.listing(
        namespace,
        about=about,
        principal=params.get("principal") or None,
        involving=None if everyone else caller.name,
        after_seq=None if raw_after is None else whole_number(raw_after, "'after'"),
        limit=int_param(request, "limit", 100, 1, 1000),
    )
    doc: dict[str, Any] = {
        "caller": caller.name,
        "entries": [entry.to_json() for entry in entries],
        "next_after": entries[-1].seq if entries else None,
    }
    if about is not None:
        limit = int_param(request, "limit", 100, 1, 1000)
        doc["decisions"] = await _decisions(platform, namespace, about, caller, everyone, limit)
    return answer(doc)


def _subject(raw: str | None, caller: Principal) -> str | None:
    if raw is None or raw == "":
        return None
    return caller.name if raw == ME else raw


async def _decisions(
    platform: Platform,
    namespace: str,
    subject: str,
    caller: Principal,
    everyone: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """What rules decided about events whose subject is `subject`, each with its rule's owner:
    all of them for the subject itself (and user admins), else only the caller's rules'."""
    found = await platform.store.repos.enforcements.about(namespace, subject, limit=limit)
    owners = {rule.name: rule.owner for rule in await platform.rules.book.in_namespace(namespace)}
    mine = everyone or subject == caller.name
    return [
        _decision(record, owners.get(record.rule, ""))
        for record in found
        if mine or owners.get(record.rule) == caller.name
    ]


def _decision(record: Enforcement, owner: str) -> dict[str, Any]:
    return {**record.to_json(), "owner": owner}


async def verify_audit(request: Request) -> JSONResponse:
    """Walk the whole chain; `expect=SEQ:HASH` (a head printed by an earlier verify) is checked
    as an anchor besides the data dir's."""
    raw = request.query_params.get("expect")
    expect = Head.parse(raw, "'expect'") if raw else None
    verdict = await platform_of(request).audit.verify(expect)
    return answer(verdict.to_json())


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/audit", list_audit, methods=["GET"]),
        Route("/v1/audit/verify", verify_audit, methods=["GET"]),
    ]
