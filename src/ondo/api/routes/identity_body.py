"""What the identity routes (users, tokens, policies) share: the namespace a body may name, and
its optional text fields."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ondo.api.http import namespace_of, principal_of
from ondo.errors import ValidationError
from ondo.security.tenancy import resolve_namespace


def acting_namespace(request: Request, named: object) -> str:
    """The namespace the call acts in: the one the body names (resolved by the one rule,
    security/tenancy.py: another's is a 404 unless the caller is the platform admin), else the
    one the query named or the caller's own."""
    if named is None or named == "":
        return namespace_of(request)
    if not isinstance(named, str):
        raise ValidationError("'namespace' must be a namespace name")
    asked = [named, *request.query_params.getlist("namespace")]
    namespace = resolve_namespace(principal_of(request), asked)
    request.scope["ondo.namespace"] = namespace  # the audit entry names it
    return namespace


def optional_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"'{key}' must be text")
    return value
