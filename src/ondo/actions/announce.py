"""The action queue's notice (notices.py): an action job that was dead-lettered."""

from __future__ import annotations

from typing import Any

from ondo.actions.codec import request_from_json
from ondo.actions.destinations import incoming_hops
from ondo.backends.store.repositories.actions import Job
from ondo.errors import OndoError
from ondo.notices import ACTION_DEAD_LETTERED, Notices


def action_dead_lettered(notices: Notices, job: Job, error: Any) -> None:
    if not notices.listened(job.namespace):
        return
    try:  # the triggering event's rule hops, plus this one (a rule reacting to it may loop)
        hops = incoming_hops(request_from_json(job.request).event) + 1
    except (OndoError, ValueError, KeyError):
        hops = 1
    data = {
        "rule": job.rule,
        "action_index": job.action_index,
        "kind": job.kind,
        "job_id": job.id,
        "attempts": job.attempts,
        "error": error,
        "event": {"source": job.event_source, "id": job.event_id},
    }
    notices.publish(job.namespace, ACTION_DEAD_LETTERED, job.rule, data, hops)
