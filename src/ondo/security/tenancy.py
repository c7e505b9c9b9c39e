"""Which namespace a caller may act in: the one rule every way into the platform goes through.

The admin may name any namespace. Any other principal acts only in its token's namespace; naming
another one is answered as if nothing were there (404), so a caller cannot even learn which
namespaces exist. The identity issue will widen this with grants, here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ondo.errors import NotFound, ValidationError
from ondo.security.tokens import ADMIN, Principal

NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
PRINCIPAL_RE = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")


def resolve_namespace(principal: Principal, asked: Sequence[str] = ()) -> str:
    """The namespace `principal` acts in when a request names `asked` (empty: its own)."""
    named = {value for value in asked if value}
    if not named:
        return principal.namespace
    if len(named) > 1:
        raise ValidationError(f"the request names several namespaces {sorted(named)}; name one")
    (namespace,) = named
    if principal.is_admin:
        check_namespace_name(namespace)
        return namespace
    if namespace != principal.namespace:
        raise NotFound(
            f"namespace {namespace[:80]!r} not found; this token acts in namespace"
            f" {principal.namespace!r} (leave out `namespace` to use it)"
        )
    return namespace


def require_admin(principal: Principal, what: str) -> None:
    """Platform-wide operations are the admin's; anyone else is answered as if they were absent."""
    if not principal.is_admin:
        raise NotFound(f"{what} is not available to this token (it is the admin's)")


def check_namespace_name(namespace: str) -> None:
    if not NAMESPACE_RE.match(namespace):
        raise ValidationError(
            f"namespace {namespace[:80]!r} is not a valid name: use 1-63 lowercase letters,"
            " digits and '-', starting with a letter"
        )


def new_principal(name: object, namespace: object) -> Principal:
    """A principal a token may be issued to: named, not the admin, in a valid namespace."""
    if not isinstance(name, str) or not PRINCIPAL_RE.match(name):
        raise ValidationError(
            "'principal' must be 1-63 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter"
        )
    if name == ADMIN:
        raise ValidationError("'principal' may not be 'admin': there is one admin token")
    if not isinstance(namespace, str):
        raise ValidationError("'namespace' must be a namespace name")
    check_namespace_name(namespace)
    return Principal(name, namespace)
