"""Functions as declared: names and limits. The records (versions, invocation records) are
the store's contract, defined in backends/store/repositories/functions.py; imported from here."""

from __future__ import annotations

import re

from ondo.backends.store.repositories.functions import (
    FINAL_STATUSES,
    MAX_EVENT_AGE_S,
    FunctionConfig,
    FunctionVersion,
    InvocationRecord,
    InvocationStatus,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "FINAL_STATUSES",
    "HANDLER_RE",
    "MAX_EVENT_AGE_S",
    "MAX_RETRIES",
    "MAX_TIMEOUT_S",
    "MIN_EVENT_AGE_S",
    "NAME_RE",
    "FunctionConfig",
    "FunctionVersion",
    "InvocationRecord",
    "InvocationStatus",
]

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
HANDLER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
MAX_TIMEOUT_S = 900
MAX_RETRIES = 2  # async invocations: Lambda's MaximumRetryAttempts range is 0-2
MIN_EVENT_AGE_S = 60.0  # Lambda's MaximumEventAgeInSeconds range: up to MAX_EVENT_AGE_S
DEFAULT_NAMESPACE = "default"
