"""Rules: create (text or JSON), list, show, delete, enable/disable, dry-run test; trace."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import (
    answer,
    audit_note,
    flag_param,
    int_param,
    json_body,
    namespace_of,
    platform_of,
    principal_of,
)
from ondo.backends.store.repositories.rules import StoredRule
from ondo.errors import ValidationError
from ondo.platform import Platform
from ondo.rules.definitions import parse_definition
from ondo.rules.tester import dry_run
from ondo.security.policy import Permission, require

DEFINITION_KEYS = ("pattern", "condition", "window", "throttle", "actions")


async def _rule_json(platform: Platform, namespace: str, name: str) -> dict[str, Any]:
    stored = await platform.rules.book.get(namespace, name)
    state = await platform.rules.window_state(namespace, name)
    return {**stored.to_json(), "state": state.to_json()}


async def create_rule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ValidationError('body must be {"text": "on … do …", "name": …} or a JSON rule')
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ValidationError("'name' must be text")
    if name:
        audit_note(request, resource=f"rule:{name[:200]}")
    text = body.get("text")
    definition = {k: v for k, v in body.items() if k in DEFINITION_KEYS} or None
    if text is not None and not isinstance(text, str):
        raise ValidationError("'text' must be the rule as text: on … do …")
    unknown = set(body) - {"name", "text", "enabled", *DEFINITION_KEYS}
    if unknown:
        raise ValidationError(
            f"unknown field(s) {sorted(unknown)}; a rule has name and text"
            f" or name and {', '.join(DEFINITION_KEYS)}"
        )
    namespace = namespace_of(request)
    book = platform.rules.book
    # Parsing and compiling is the costly part (bounded by ondo.rules.limits): off the loop.
    parsed = await asyncio.to_thread(parse_definition, text, definition)
    rule = book.prepare(
        namespace,
        principal_of(request).name,
        name=name,
        text=text,
        definition=definition,
        parsed=parsed,
    )
    principal = principal_of(request)
    require(principal, Permission.RULES, "creating a rule", f"rule:{rule.stored.name}")
    replace = flag_param(request.query_params, "replace")
    take_over = flag_param(request.query_params, "take_over")
    if take_over:  # a citizen writes and replaces its own rules only
        require(principal, Permission.DEPLOY, "taking over a rule", f"rule:{rule.stored.name}")
    stored = await book.add(rule, replace_existing=replace, take_over=take_over)
    if body.get("enabled") is False:
        stored = await book.set_enabled(namespace, stored.name, False)
    _note_rule(request, stored, replace=replace)
    return answer(await _rule_json(platform, namespace, stored.name), 201)


def _note_rule(request: Request, stored: StoredRule, **detail: Any) -> None:
    """The rule's audit entry names it, its owner, and the data subject it is about (when
    `about` names exactly one; otherwise the subjects' patterns, if any)."""
    subjects = stored.spec.get("pattern", {}).get("subject", [])
    exact = [s for s in subjects if isinstance(s, str)]
    one = exact[0] if len(subjects) == 1 and exact else ""
    if subjects and not one:
        detail["subjects"] = subjects[:20]
    audit_note(request, resource=f"rule:{stored.name}", about=one, owner=stored.owner, **detail)


async def list_rules(request: Request) -> JSONResponse:
    platform = platform_of(request)
    rules = await platform.rules.book.in_namespace(namespace_of(request))
    return answer({"rules": [r.to_json() for r in rules]})


async def show_rule(request: Request) -> JSONResponse:
    platform = platform_of(request)
    return answer(await _rule_json(platform, namespace_of(request), request.path_params["name"]))


async def _check_owner(request: Request) -> StoredRule:
    """The rule named by the path. Another principal's rule may be changed by those who run
    the namespace (DEPLOY: admin, developer), not by a citizen, who changes its own only."""
    name = request.path_params["name"]
    stored = await platform_of(request).rules.book.get(namespace_of(request), name)
    principal = principal_of(request)
    if stored.owner != principal.name:
        require(principal, Permission.DEPLOY, f"changing {stored.owner!r}'s rule", f"rule:{name}")
    return stored


async def delete_rule(request: Request) -> JSONResponse:
    name, book = request.path_params["name"], platform_of(request).rules.book
    audit_note(request, resource=f"rule:{name}")
    _note_rule(request, await _check_owner(request))  # who it was about
    await book.delete(namespace_of(request), name)
    return answer({"deleted": name})


async def enable_rule(request: Request) -> JSONResponse:
    return await _set_enabled(request, True)


async def disable_rule(request: Request) -> JSONResponse:
    return await _set_enabled(request, False)


async def _set_enabled(request: Request, enabled: bool) -> JSONResponse:
    platform = platform_of(request)
    audit_note(request, resource=f"rule:{request.path_params['name']}")
    await _check_owner(request)
    stored = await platform.rules.book.set_enabled(
        namespace_of(request), request.path_params["name"], enabled
    )
    _note_rule(request, stored)
    return answer(stored.to_json())


async def rule_enforcements(request: Request) -> JSONResponse:
    platform = platform_of(request)
    namespace, name = namespace_of(request), request.path_params["name"]
    await platform.rules.book.get(namespace, name)
    limit = int_param(request, "limit", 50, 1, 1000)
    records = await platform.rules.log.for_rule(namespace, name, limit)
    return answer({"enforcements": [r.to_json() for r in records]})


async def test_rules(request: Request) -> JSONResponse:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        raise ValidationError('body must be {"event": {CloudEvent JSON}, "rule": NAME (optional)}')
    rule = body.get("rule")
    if rule is not None and not isinstance(rule, str):
        raise ValidationError("'rule' must be a rule name")
    platform = platform_of(request)
    return answer(await dry_run(platform.rules, namespace_of(request), body["event"], rule))


async def trace(request: Request) -> JSONResponse:
    platform = platform_of(request)
    return answer(
        await platform.tracer.trace(request.path_params["event_id"], namespace_of(request))
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/rules", list_rules, methods=["GET"]),
        Route("/v1/rules", create_rule, methods=["POST"]),
        Route("/v1/rules/test", test_rules, methods=["POST"]),
        Route("/v1/rules/{name}", show_rule, methods=["GET"]),
        Route("/v1/rules/{name}", delete_rule, methods=["DELETE"]),
        Route("/v1/rules/{name}/enable", enable_rule, methods=["POST"]),
        Route("/v1/rules/{name}/disable", disable_rule, methods=["POST"]),
        Route("/v1/rules/{name}/enforcements", rule_enforcements, methods=["GET"]),
        Route("/v1/trace/{event_id}", trace, methods=["GET"]),
    ]
