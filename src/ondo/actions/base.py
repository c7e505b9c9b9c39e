"""What an action is to the queue: a request, a result, and one `ActionKind` per action word.

The rules engine builds `ActionRequest`s; the queue (queue.py) stores them and calls the kind's
`perform` until it succeeds, retrying with backoff and dead-lettering the ones that never do.
Each kind lives in its own module (invoke.py, emit.py, …); platform.py puts them together in
an `ActionKinds`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ondo.errors import ActionNotAvailable, RuleError

if TYPE_CHECKING:
    from ondo.actions.model import Action


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
    """One action word. A kind is built with its own collaborators (invoke: the function
    service's invoke interface; emit: the bus append), so the queue hands it only the job.

    Optional members the queue looks for: `lane(request) -> str` and
    `lane_limit(request) -> int | None` (jobs of one lane share a limit: invoke's is the
    function's concurrency), `max_attempts(request) -> int`, `max_event_age_s(request) -> float`
    `acts_on: str` (the only event type it can act on: rules are checked against it),
    `async on_outcome(request, job, result)` (called after the last attempt instead of the
    destination events), `async perform_after(request, attempt, previous)` (called instead
    of `perform`, with the detail of the job's last failed attempt or None: notify uses it to
    send only to the channels not reached yet) and `async perform_first(request, attempt)`:
    `perform` of an attempt that has never started before (not one a stop or a crash cut
    off), which may then skip looking for what that attempt did (a store round trip per job).
    """

    kind: str
    # Whether the queue emits ondo.action.succeeded/failed destination events for this kind.
    destinations: bool

    def validate(self, action: Action, namespace: str) -> None:
        """Raise RuleError (or ActionNotAvailable) when the action cannot be accepted."""
        ...

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        """Carry out attempt number `attempt` (1-based); safe to repeat for the same attempt."""
        ...


class ActionKinds:
    """The action words this platform performs (platform.py builds each kind with its
    collaborators); plug-ins and tests add their own with `add`."""

    def __init__(self, kinds: Iterable[ActionKind] = ()) -> None:
        self._kinds: dict[str, ActionKind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: ActionKind) -> None:
        """Add (or replace) the kind of `kind.kind`."""
        self._kinds[kind.kind] = kind

    def remove(self, word: str) -> None:
        self._kinds.pop(word, None)

    def get(self, word: str) -> ActionKind:
        """The kind for an action word; RuleError naming the known words when there is none."""
        found = self._kinds.get(word)
        if found is None:
            known = ", ".join(sorted(self._kinds))
            raise RuleError(f"unknown action {word!r}; the actions are: {known}")
        return found

    def find(self, word: str) -> ActionKind | None:
        return self._kinds.get(word)

    def validate(self, action: Action, namespace: str = "default") -> None:
        """Check an action when its rule is deployed, so mistakes surface then, not at 3 a.m."""
        self.get(action.kind).validate(action, namespace)

    def acts_on(self, word: str) -> str | None:
        """The one event type an action word works on (a kind's optional `acts_on`: bcc and
        forward copy mail.received messages), or None when any event will do."""
        found = getattr(self.find(word), "acts_on", None)
        return found if isinstance(found, str) else None

    def lane_of(self, request: ActionRequest) -> str:
        """The lane of a request: jobs of one lane share a limit (the kind's `lane_limit`);
        without its own `lane` the lane is the action word, limited by the queue alone."""
        lane = getattr(self.find(request.action.kind), "lane", None)
        return str(lane(request)) if lane is not None else request.action.kind


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
