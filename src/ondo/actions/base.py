"""What an action is to the queue: a request, a result, and one `ActionKind` per action word.

The rules engine builds `ActionRequest`s; the queue (queue.py) stores them and calls the kind's
`perform` until it succeeds, retrying with backoff and dead-lettering the ones that never do.
Each kind lives in its own module (invoke.py, emit.py, …) and is listed in `KINDS`.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ondo.errors import ActionNotAvailable, RuleError

if TYPE_CHECKING:
    from ondo.platform import Platform
    from ondo.rules.model import Action


@dataclass(frozen=True)
class ActionRequest:
    """One action of one rule firing for one event; `key` makes performing it idempotent."""

    key: str
    namespace: str
    rule: str
    action_index: int
    action: Action
    event: Mapping[str, Any]
    enforcement_id: str


@dataclass(frozen=True)
class ActionResult:
    """What one attempt did. `retryable=False` sends a failure straight to the dead letters."""

    ok: bool
    detail: Mapping[str, Any] = field(default_factory=dict)
    retryable: bool = True
    invocation_id: str | None = None


class ActionKind(Protocol):
    kind: str
    # Whether the queue emits ondo.action.succeeded/failed destination events for this kind.
    destinations: bool

    def validate(self, action: Action, platform: Platform, namespace: str) -> None:
        """Raise RuleError (or ActionNotAvailable) when the action cannot be accepted."""
        ...

    async def perform(
        self, request: ActionRequest, attempt: int, platform: Platform
    ) -> ActionResult:
        """Carry out attempt number `attempt` (1-based); safe to repeat for the same attempt."""
        ...


def lane_of(request: ActionRequest) -> str:
    """The lane of a request: jobs of one lane share a limit (see `lane_limit` below).

    A kind may define `lane(request) -> str` and `lane_limit(request, platform) -> int | None`
    (invoke: one lane per function, limited to the function's concurrency); without them the
    lane is the action word, with no limit but the queue's own.
    """
    try:
        kind = kind_of(request.action.kind)
    except RuleError:  # performing it will dead-letter it with this error
        return request.action.kind
    lane = getattr(kind, "lane", None)
    return str(lane(request)) if lane is not None else request.action.kind


# Action word -> module holding its kind (a module-level `KIND`); imported on first use.
KIND_MODULES: dict[str, str] = {
    "invoke": "ondo.actions.invoke",
    "invoke-async": "ondo.actions.async_invoke",  # `ondo invoke --async`; not a rule action
    "emit": "ondo.actions.emit",
    "notify": "ondo.actions.unavailable",
    "bcc": "ondo.actions.unavailable",
    "forward": "ondo.actions.unavailable",
    "webhook": "ondo.actions.unavailable",
    "mqtt": "ondo.actions.unavailable",
}

_loaded: dict[str, ActionKind] = {}
_extra: dict[str, ActionKind] = {}


def register_kind(kind: ActionKind) -> None:
    """Add (or replace) a kind at run time: plug-ins, and tests' own kinds."""
    _extra[kind.kind] = kind


def kind_of(word: str) -> ActionKind:
    """The kind for an action word; RuleError naming the known words when there is none."""
    if word in _extra:
        return _extra[word]
    if word in _loaded:
        return _loaded[word]
    module = KIND_MODULES.get(word)
    if module is None:
        known = ", ".join(sorted({*KIND_MODULES, *_extra}))
        raise RuleError(f"unknown action {word!r}; the actions are: {known}")
    found = importlib.import_module(module).kind_for(word)
    kind: ActionKind = found
    _loaded[word] = kind
    return kind


def validate_action(action: Action, platform: Platform, namespace: str = "default") -> None:
    """Check an action when its rule is deployed, so mistakes surface then and not at 3 a.m."""
    kind_of(action.kind).validate(action, platform, namespace)


def not_available(word: str, why: str) -> ActionNotAvailable:
    return ActionNotAvailable(f"action not available yet: {word} ({why})")


def attempt_id(key: str, attempt: int) -> str:
    """The request id of one attempt: the same attempt after a crash reuses it (idempotent)."""
    return f"act-{_short(key)}-{attempt}"


def derived_id(key: str, suffix: str = "") -> str:
    """A stable event id from an idempotency key (the bus dedups on (source, id))."""
    return f"{_short(key)}{'-' + suffix if suffix else ''}"


def _short(key: str) -> str:
    if len(key) <= 40 and key.replace("-", "").isalnum():
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]
