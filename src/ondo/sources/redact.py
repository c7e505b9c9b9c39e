"""Settings as shown to people: passwords, secrets and tokens masked, in values and in URLs."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_KEY_RE = re.compile(r"pass|secret|token|key$|credential", re.IGNORECASE)
URL_PASSWORD_RE = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]*(?=@)", re.I)


def redacted(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if key and SECRET_KEY_RE.search(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return URL_PASSWORD_RE.sub(lambda m: m["head"] + MASK, value)
    return value
