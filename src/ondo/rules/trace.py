"""`ondo trace EVENT_ID`: event → rules → decisions → actions → jobs → invocations, in words."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ondo.backends.bus.base import StoredEvent
from ondo.backends.store.repositories.functions import InvocationRecord
from ondo.backends.store.repositories.rules import Enforcement
from ondo.errors import Gone, NotFound
from ondo.events import format_epoch
from ondo.ids import uuid7_time
from ondo.rules.enforcement import FAILED, EnforcementLog


class Events(Protocol):
    """The bus, as far as a trace reads it."""

    async def by_id(self, id: str, namespace: str | None = None) -> Sequence[StoredEvent]: ...


class Jobs(Protocol):
    """The action queue, as far as a trace reads it."""

    async def jobs_for(self, enforcement_id: str) -> list[dict[str, Any]]: ...


class Invocations(Protocol):
    """The function service, as far as a trace reads it."""

    async def invocation(self, invocation_id: str) -> InvocationRecord | None: ...


class Retention(Protocol):
    """What retention says about something missing (ondo.retention.RetentionService)."""

    async def deleted(self, name: str, at: float | None) -> str | None: ...

    async def may_have_deleted(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class Tracer:
    """`ondo trace`: reads the records every part keeps of an event (platform.py wires it)."""

    events: Events
    log: EnforcementLog
    jobs: Jobs
    invocations: Invocations
    retention: Retention

    async def trace(self, event_id: str, namespace: str) -> dict[str, Any]:
        """Everything ondo knows about what an event caused, as JSON plus the story in
        `lines`."""
        stored = await self.events.by_id(event_id, namespace)
        records = [r for r in await self.log.for_event(event_id) if r.namespace == namespace]
        skipped = await self.log.skipped(event_id, namespace)
        if not stored and not records and not skipped:
            raise await self._missing(event_id, namespace)
        decisions = [await self._decision(r.to_json()) for r in records]
        out: dict[str, Any] = {
            "events": [s.to_json() for s in stored],
            "decisions": decisions,
            "skipped": skipped,
        }
        if not stored:
            made = _event_time(event_id, records, skipped)
            reason = await self.retention.deleted("events", made)
            if reason is not None:
                out["deleted"] = {"event": f"event {event_id} is {reason} and was deleted"}
        out["lines"] = describe(out)
        return out

    async def _missing(self, event_id: str, namespace: str) -> NotFound:
        """Gone if retention deleted the event and what it caused (its id says when it came),
        else NotFound, which mentions retention if it has deleted events."""
        made, retention = uuid7_time(event_id), self.retention
        reason = await retention.deleted("rule_decisions", made) or await retention.deleted(
            "events", made
        )
        where = f"event {event_id!r} in namespace {namespace!r}"
        if reason is not None:
            return Gone(f"{where} is {reason} and was deleted")
        maybe = await retention.may_have_deleted("events")
        hint = (
            f" (if it was sent earlier, it may be older than {maybe} and deleted)" if maybe else ""
        )
        return NotFound(f"no {where}{hint}")

    async def deleted_event(self, event_id: str, namespace: str) -> str | None:
        """Why the log no longer holds an event, if retention deleted it: "event X is older
        than the retention of events (7 days) and was deleted". Its time comes from its id (a
        UUIDv7) or from the decisions taken on it, which are kept longer."""
        records = [r for r in await self.log.for_event(event_id) if r.namespace == namespace]
        made = _event_time(event_id, records, await self.log.skipped(event_id, namespace))
        reason = await self.retention.deleted("events", made)
        return None if reason is None else f"event {event_id!r} is {reason} and was deleted"

    async def _decision(self, rec: dict[str, Any]) -> dict[str, Any]:
        jobs = await self.jobs.jobs_for(rec["id"]) if rec["actions"] else []
        for job in jobs:
            job["invocations"] = [
                await self._invocation(i) for i in job.get("invocation_ids") or []
            ]
        out = {**rec, "jobs": jobs}
        if len(jobs) < len(rec["actions"]):
            reason = await self.retention.deleted("action_jobs", rec["at"])
            if reason is not None:
                out["jobs_deleted"] = reason
        return out

    async def _invocation(self, invocation_id: str) -> dict[str, Any]:
        record = await self.invocations.invocation(invocation_id)
        if record is None:
            made = uuid7_time(invocation_id)
            reason = await self.retention.deleted("invocation_records", made)
            if reason is not None:
                return {"id": invocation_id, "status": "deleted", "deleted": reason}
            return {"id": invocation_id, "status": "unknown (record not found)"}
        return {
            "id": record.id,
            "function": record.function,
            "version": record.version,
            "status": record.status,
            "duration_ms": record.duration_ms,
            "result": record.result,
            "error": record.error,
        }


def _event_time(
    event_id: str, records: list[Enforcement], skipped: list[dict[str, Any]]
) -> float | None:
    """When the event arrived, as far as what is left tells (None: nothing tells)."""
    times = [r.at for r in records] + [float(s["at"]) for s in skipped]
    made = uuid7_time(event_id)
    return min(times) if times else made


def _when(t: float) -> str:
    return format_epoch(t)


def describe(trace: dict[str, Any]) -> list[str]:
    """The trace told in sentences, one line each (what `ondo trace` prints)."""
    lines: list[str] = []
    if "deleted" in trace:
        lines.append(trace["deleted"]["event"])
    for stored in trace["events"]:
        ev = stored["event"]
        lines.append(
            f"event {ev['id']} ({ev['type']} from {ev['source']}) arrived at"
            f" {_when(stored['received_at'])}, seq {stored['seq']}"
        )
    skipped = trace.get("skipped", [])
    for skip in skipped:
        lines.append(
            f"  the rules dispatcher gave up on it at {_when(skip['at'])} after"
            f" {skip['attempts']} attempts and skipped it: {skip['reason']}"
        )
    if not trace["decisions"] and not skipped:
        lines.append("  no rule matched it")
    for dec in trace["decisions"]:
        lines.extend(_describe_decision(dec))
    return lines


def _describe_decision(dec: dict[str, Any]) -> list[str]:
    stage = "its timer" if dec["stage"] == "timer" else "the event"
    if dec["outcome"] == FAILED:
        on = "its timer" if dec["stage"] == "timer" else "this event"
        when = _when(dec["at"])
        return [f"  rule {dec['rule']} failed on {on} ({when}) and was disabled: {dec['detail']}"]
    detail = f": {dec['detail']}" if dec["detail"] else ""
    if dec.get("grant"):  # consent: the data subject's grant that let the rule act
        detail += f" (allowed by {dec.get('subject')}'s grant {dec['grant']})"
    lines = [f"  rule {dec['rule']} ({stage}, {_when(dec['at'])}): {dec['outcome']}{detail}"]
    jobs = {j["action_index"]: j for j in dec["jobs"]}
    for action in dec["actions"]:
        what = f"{action['kind']} {action['target']}".strip()
        job = jobs.get(action["index"])
        if job is None and dec.get("jobs_deleted"):
            lines.append(
                f"    action {action['index']} {what}: its job is {dec['jobs_deleted']}"
                " and was deleted"
            )
            continue
        if job is None:
            lines.append(f"    action {action['index']} {what}: not in the action queue yet")
            continue
        lines.append(
            f"    action {action['index']} {what}: job {job['id']} {job['status']}"
            f" after {job['attempts']} attempt(s)"
            + (f", last error: {_error_text(job['last_error'])}" if job.get("last_error") else "")
        )
        lines.extend(_describe_job(job))
    return lines


def _describe_job(job: dict[str, Any]) -> list[str]:
    """Each attempt in order (a DLQ retry marked where it began), and the event an emit sent."""
    lines: list[str] = []
    retried_after = job.get("attempt_seq", 0) - job["attempts"]
    for number, inv in enumerate(job["invocations"], start=1):
        if number == retried_after + 1 and retried_after > 0:
            lines.append(f"      retried from the dead-letter queue after attempt {retried_after}")
        if inv.get("deleted"):
            lines.append(
                f"      attempt {number}: invocation {inv['id']}: its record is {inv['deleted']}"
                " and was deleted"
            )
            continue
        result = inv.get("error") if inv["status"] != "succeeded" else inv.get("result")
        lines.append(
            f"      attempt {number}: invocation {inv['id']} of {inv.get('function', '?')}"
            f" v{inv.get('version', '?')}: {inv['status']} → {_text(result)}"
        )
    emitted = (job.get("result") or {}).get("event_id") if job["kind"] == "emit" else None
    if emitted:
        lines.append(f"      emitted event {emitted}")
    lines.extend(_describe_deliveries(job))
    return lines


def _describe_deliveries(job: dict[str, Any]) -> list[str]:
    """A notification's deliveries: who was reached on which channel and when, or why not."""
    detail = job.get("result") if job["status"] == "succeeded" else job.get("last_error")
    found = detail.get("deliveries") if isinstance(detail, dict) else None
    lines = []
    for d in found if isinstance(found, list) else []:
        who = f"{d.get('recipient')} ({d.get('role')}, {d.get('address')})"
        when = _when(float(d.get("at") or 0))
        if d.get("ok"):
            lines.append(f"      attempt {d.get('attempt')}: reached {who} at {when}")
        else:
            lines.append(
                f"      attempt {d.get('attempt')}: could not reach {who} at {when}:"
                f" {d.get('error')}"
            )
    return lines


def _error_text(error: Any) -> str:
    """A job's last error as people read it (a notification's: its summary, not its record)."""
    if isinstance(error, dict) and "deliveries" in error and "error" in error:
        return str(error["error"])
    return _text(error)


def _text(value: Any) -> str:
    """A value as people read it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
