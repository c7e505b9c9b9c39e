"""ActionRequest <-> JSON text, as the job row stores it."""

from __future__ import annotations

import json
from typing import Any

from ondo.actions.base import ActionRequest
from ondo.actions.model import Action
from ondo.errors import ValidationError


def request_to_json(request: ActionRequest) -> str:
    return json.dumps(
        {
            "key": request.key,
            "namespace": request.namespace,
            "rule": request.rule,
            "action_index": request.action_index,
            "action": action_to_json(request.action),
            "event": dict(request.event),
            "enforcement_id": request.enforcement_id,
        },
        separators=(",", ":"),
        default=_plain,
    )


def request_from_json(text: str) -> ActionRequest:
    try:
        obj = json.loads(text)
        return ActionRequest(
            key=obj["key"],
            namespace=obj["namespace"],
            rule=obj["rule"],
            action_index=obj["action_index"],
            action=action_from_json(obj["action"]),
            event=obj["event"],
            enforcement_id=obj["enforcement_id"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"stored action request is unreadable ({exc!r})") from None


def action_to_json(action: Action) -> dict[str, Any]:
    args = None if action.args is None else dict(action.args)
    out = {"kind": action.kind, "target": action.target, "args": args, "cc": list(action.cc)}
    if action.saying is not None:  # only when given: older stored forms stay equal
        out["saying"] = action.saying
    return out


def action_from_json(obj: dict[str, Any]) -> Action:
    return Action(
        kind=str(obj["kind"]),
        target=str(obj["target"]),
        args=obj.get("args"),
        cc=tuple(str(c) for c in obj.get("cc") or ()),
        saying=None if obj.get("saying") is None else str(obj["saying"]),
    )


def _plain(value: Any) -> Any:
    """Mappings and tuples the rule model keeps immutable, as plain JSON values."""
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    if hasattr(value, "items"):
        return dict(value.items())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
