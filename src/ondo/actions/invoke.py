"""`invoke FUNCTION [with JSON]`: run a function asynchronously for the triggering event.

The payload is the triggering event's structured JSON form (attributes and `data`), converted to
the shape the function declared (`event: s3 | eventbridge`, functions/shapes.py), or, when the
rule says `with JSON`, that JSON document instead (it replaces the event; it is not merged).
Each attempt runs under its own request id, derived from the job's key and attempt number, so
an attempt repeated after a crash finds its earlier record instead of running the function twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ondo.actions.base import ActionRequest, ActionResult, attempt_id
from ondo.actions.ports import Functions
from ondo.backends.store.repositories.functions import FINAL_STATUSES, InvocationRecord
from ondo.errors import NotFound, RuleError, ValidationError
from ondo.functions.shapes import shaped

if TYPE_CHECKING:
    from ondo.actions.model import Action


def with_json(action: Action) -> Any | None:
    """The `with JSON` document of an action (the rule model keeps it as `args`), or None."""
    return action.args


class InvokeAction:
    kind = "invoke"
    destinations = True

    def __init__(self, functions: Functions) -> None:
        self._functions = functions

    def validate(self, action: Action, namespace: str) -> None:
        if not action.target:
            raise RuleError("`invoke` needs a function name: invoke FUNCTION [with JSON]")
        if not self._functions.exists(action.target, namespace):
            raise RuleError(
                f"invoke {action.target}: function {action.target!r} does not exist in namespace"
                f" {namespace!r}; deploy it first (`ondo deploy`) or fix the name"
            )

    def lane(self, request: ActionRequest) -> str:
        return lane_of_function(request)

    def lane_limit(self, request: ActionRequest) -> int | None:
        """The function's concurrency: more jobs than that would only wait for a slot."""
        return concurrency_of(self._functions, request)

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        record = await self._finished_before(attempt_id(request.key, attempt))
        if record is not None:
            return result_of(record)
        return await self.perform_first(request, attempt)

    async def perform_first(self, request: ActionRequest, attempt: int) -> ActionResult:
        """An attempt that never started: no record of it to look for (see ActionKind)."""
        try:
            payload = payload_of(request, shape_of(self._functions, request))
        except ValidationError as exc:  # the event has no such shape: retrying won't help
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        try:
            record = await self._functions.invoke(
                request.action.target,
                payload,
                namespace=request.namespace,
                trigger=f"rule:{request.rule}",
                request_id=attempt_id(request.key, attempt),
                wait_for_slot=True,
                tracked=True,  # the job row tracks the attempt; a crash re-runs it
            )
        except NotFound as exc:  # deleted since the rule was deployed: retrying won't help
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        return result_of(record)

    async def _finished_before(self, request_id: str) -> InvocationRecord | None:
        """The record of this very attempt if it already ran to the end (before a crash)."""
        record = await self._functions.invocation(request_id)
        if record is None or record.status not in FINAL_STATUSES or record.status == "interrupted":
            return None
        return record


def lane_of_function(request: ActionRequest) -> str:
    """One lane per function: its rule and async invocations share its concurrency."""
    return f"invoke:{request.namespace}/{request.action.target}"


def concurrency_of(functions: Functions, request: ActionRequest) -> int | None:
    try:
        return functions.get(request.action.target, request.namespace).config.concurrency
    except NotFound:
        return None


def shape_of(functions: Functions, request: ActionRequest) -> str:
    """The event shape the function declared (`event:`; functions/shapes.py)."""
    try:
        return functions.get(request.action.target, request.namespace).config.event
    except NotFound:  # invoking it says so
        return "cloudevent"


def payload_of(request: ActionRequest, shape: str = "cloudevent") -> bytes:
    """The triggering event in the function's shape, or the rule's `with JSON` document."""
    given = with_json(request.action)
    if given is None:
        given = shaped(dict(request.event), shape, request.action.target)
    return json.dumps(given, separators=(",", ":")).encode()


def result_of(record: InvocationRecord) -> ActionResult:
    if record.status == "succeeded":
        return ActionResult(ok=True, detail={"result": record.result}, invocation_id=record.id)
    error = dict(record.error or {})
    detail = {"status": record.status, "error": error.get("errorMessage", record.status)}
    if error.get("errorType"):
        detail["error_type"] = error["errorType"]
    return ActionResult(ok=False, detail=detail, retryable=True, invocation_id=record.id)
