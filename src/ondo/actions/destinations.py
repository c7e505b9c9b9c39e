"""Destination events: after an action succeeds, or fails for the last time, say so on the bus.

Like Lambda's destinations: `ondo.action.succeeded` / `ondo.action.failed`, source
`ondo/rules/<rule>`, so a rule can react to another rule's outcome (alert on failure, chain work).
Each carries `ondohops` = the triggering event's hops + 1, so such chains cannot loop forever,
and an id derived from the job's key and attempt, so a repeat after a crash is deduplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ondo.actions.base import ActionRequest, ActionResult, derived_id
from ondo.backends.bus.base import AppendResult, Bus
from ondo.events import HOPS_EXTENSION, CloudEvent
from ondo.metrics import Metrics

SUCCEEDED = "ondo.action.succeeded"
FAILED = "ondo.action.failed"


def incoming_hops(event: Any) -> int:
    hops = event.get(HOPS_EXTENSION, 0) if hasattr(event, "get") else 0
    return hops if isinstance(hops, int) and not isinstance(hops, bool) else 0


def destination_event(
    request: ActionRequest, attempt_seq: int, attempts: int, result: ActionResult
) -> CloudEvent:
    outcome = "succeeded" if result.ok else "failed"
    data: dict[str, Any] = {
        "rule": request.rule,
        "namespace": request.namespace,
        "action": {
            "index": request.action_index,
            "kind": request.action.kind,
            "target": request.action.target,
        },
        "event": {"source": request.event.get("source"), "id": request.event.get("id")},
        "enforcement_id": request.enforcement_id,
        "invocation_id": result.invocation_id,
        "attempts": attempts,
    }
    data["result" if result.ok else "error"] = dict(result.detail)
    subject = request.event.get("subject")
    return CloudEvent(
        id=derived_id(request.key, f"{outcome}-{attempt_seq}"),
        source=f"ondo/rules/{request.rule}",
        type=SUCCEEDED if result.ok else FAILED,
        subject=subject if isinstance(subject, str) and subject else None,
        datacontenttype="application/json",
        data=data,
        extensions={HOPS_EXTENSION: incoming_hops(request.event) + 1},
    )


@dataclass(frozen=True)
class BusAppend:
    """`AppendEvent` on the platform's bus: each event an action makes, counted in
    ondo_events_ingested_total."""

    bus: Bus
    metrics: Metrics

    async def __call__(self, event: CloudEvent, namespace: str) -> AppendResult:
        result = (await self.bus.append([event], namespace=namespace))[0]
        self.metrics.events_appended(namespace, 0 if result.duplicate else 1)
        return result
