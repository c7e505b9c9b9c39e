"""A login: the CLI (or any client) shows the platform a token, learns who it names, and the
platform says so on the bus, as the CloudEvent `auth.login` (source `ondo`, subject the
principal's name) in the principal's namespace, where rules `on auth.login …` react to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from ondo.backends.store.repositories.tokens import Principal
from ondo.events import CloudEvent
from ondo.ids import uuid7

LOGIN_TYPE: Final = "auth.login"
SOURCE: Final = "ondo"


def identity_json(principal: Principal) -> dict[str, Any]:
    """Who a token names, as `whoami` and `login` answer."""
    return {
        "name": principal.name,
        "namespace": principal.namespace,
        "role": principal.role,
        "kind": principal.kind,
        "token_id": principal.token_id,
        "expires_at": principal.expires_at,
        "platform_admin": principal.is_admin,
        "policies": [{"permission": p, "resource": r} for p, r in principal.policies],
    }


def login_event(principal: Principal, now: float) -> CloudEvent:
    """The `auth.login` event of a successful login (never the token, only its id)."""
    return CloudEvent(
        id=uuid7(),
        source=SOURCE,
        type=LOGIN_TYPE,
        subject=principal.name,
        time=datetime.fromtimestamp(now, UTC),
        datacontenttype="application/json",
        data={
            "namespace": principal.namespace,
            "user": principal.name,
            "role": principal.role,
            "kind": principal.kind,
            "token_id": principal.token_id,
            "outcome": "success",
        },
    )
