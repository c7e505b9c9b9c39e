"""The function service's notices (notices.py): a version deployed, an invocation that failed."""

from __future__ import annotations

import json
from typing import Any

from ondo.backends.store.repositories.functions import FunctionVersion, InvocationRecord
from ondo.events import HOPS_EXTENSION
from ondo.notices import FUNCTION_DEPLOYED, INVOCATION_FAILED, Notices

_MAX_MESSAGE_CHARS = 1000


def function_deployed(notices: Notices, fv: FunctionVersion) -> None:
    data = {"function": fv.name, "version": fv.version, "app": fv.app, "code_sha256": fv.code_hash}
    notices.publish(fv.namespace, FUNCTION_DEPLOYED, fv.name, data)


def invocation_failed(notices: Notices, record: InvocationRecord, payload: bytes | None) -> None:
    """Announce `record` if it did not succeed (and anyone listens in its namespace)."""
    if record.status == "succeeded" or not notices.listened(record.namespace):
        return
    error = record.error or {}
    message = str(error.get("errorMessage", ""))[:_MAX_MESSAGE_CHARS]
    data = {
        "function": record.function,
        "version": record.version,
        "invocation_id": record.id,
        "status": record.status,
        "mode": record.mode,
        "trigger": record.trigger,
        "attempt": record.attempt,
        "error_type": error.get("errorType"),
        "error_message": message,
    }
    hops = _hops(payload) + 1 if (record.trigger or "").startswith("rule:") else 0
    notices.publish(record.namespace, INVOCATION_FAILED, record.function, data, hops)


def _hops(payload: bytes | None) -> int:
    """Rule hops behind the event a rule invoked a function with (its payload is that event,
    `ondohops` at the top level); 0 when it has none."""
    if payload is None or HOPS_EXTENSION.encode() not in payload:
        return 0
    try:
        doc: Any = json.loads(payload)
    except ValueError:
        return 0
    hops = doc.get(HOPS_EXTENSION) if isinstance(doc, dict) else None
    return hops if isinstance(hops, int) and not isinstance(hops, bool) else 0
