"""`emit TYPE [with JSON]`: append a new event to the bus, as the rule.

Source `ondo/rules/<rule>`, the triggering event's subject, data = the `with` JSON or else the
triggering event's data, `ondohops` = incoming hops + 1 (the engine refuses chains that are too
long). The id is derived from the idempotency key, so a repeated emit is deduplicated by the bus.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from ondo.actions.base import ActionRequest, ActionResult, derived_id
from ondo.actions.destinations import incoming_hops
from ondo.actions.invoke import with_json
from ondo.actions.ports import AppendEvent
from ondo.errors import EventError, PayloadTooLarge, RuleError
from ondo.events import HOPS_EXTENSION, CloudEvent

if TYPE_CHECKING:
    from ondo.actions.model import Action


class EmitAction:
    kind = "emit"
    destinations = False

    def __init__(self, append: AppendEvent) -> None:
        self._append = append

    def validate(self, action: Action, namespace: str) -> None:
        if not action.target or any(c.isspace() for c in action.target):
            raise RuleError(
                f"emit {action.target!r}: an event type is one word, e.g. emit order.shipped"
            )

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        try:
            event = event_of(request)
            appended = await self._append(event, request.namespace)
        except (EventError, PayloadTooLarge) as exc:  # the same event would fail again
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        detail = {"event_id": event.id, "seq": appended.seq, "duplicate": appended.duplicate}
        return ActionResult(ok=True, detail=detail)


def event_of(request: ActionRequest) -> CloudEvent:
    given = with_json(request.action)
    subject = request.event.get("subject")
    return CloudEvent(
        id=derived_id(request.key),
        source=f"ondo/rules/{request.rule}",
        type=request.action.target,
        subject=subject if isinstance(subject, str) and subject else None,
        datacontenttype="application/json" if given is not None else _content_type(request),
        data=given if given is not None else _data_of(request.event),
        extensions={HOPS_EXTENSION: incoming_hops(request.event) + 1},
    )


def _data_of(event: Any) -> Any:
    if event.get("data_base64") is not None:
        return base64.b64decode(event["data_base64"])
    return event.get("data")


def _content_type(request: ActionRequest) -> str | None:
    value = request.event.get("datacontenttype")
    return value if isinstance(value, str) and value else None
