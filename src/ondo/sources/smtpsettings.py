"""The smtp source's settings in ondo.yaml, checked at deploy (docs/sources/smtp.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ondo.durations import parse_duration
from ondo.errors import DurationError
from ondo.sources.base import FieldPath, Settings, Where, no_unknown_keys

KEYS = (
    "host",
    "port",
    "domains",
    "hostname",
    "max_message_size",
    "max_recipients",
    "keep_messages",
    "smarthost",
)
SMARTHOST_KEYS = (
    "host",
    "port",
    "tls",
    "username",
    "password",
    "timeout",
    "verify",
    "retry_first",
    "retry_max",
    "give_up_after",
)
TLS_MODES = ("auto", "none", "starttls", "tls")
DEFAULT_MAX_MESSAGE = 10 << 20
MIN_MESSAGE, MAX_MESSAGE = 1 << 10, 100 << 20
_DOMAIN_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 1 << 20,
    "gb": 10**9,
    "gib": 1 << 30,
}


def validate_settings(settings: Mapping[str, Any], at: Where) -> Settings:
    no_unknown_keys(settings, KEYS, at)
    hostname = settings.get("hostname")
    if hostname is not None and not _is_domain(hostname):
        raise at.error(("hostname",), "must be a host name such as mail.example.org")
    smarthost = settings.get("smarthost")
    return {
        "host": _text(settings, "host", "127.0.0.1", at),
        "port": _port(settings, ("port",), 2525, at),
        "domains": _domains(settings.get("domains"), at),
        "hostname": hostname,
        "max_message_size": _size(settings.get("max_message_size", DEFAULT_MAX_MESSAGE), at),
        "max_recipients": _count(settings, "max_recipients", 100, at),
        "keep_messages": _duration(settings, ("keep_messages",), "7d", at),
        "smarthost": None if smarthost is None else _smarthost(smarthost, at),
    }


def _smarthost(raw: Any, at: Where) -> Settings:
    if not isinstance(raw, Mapping):
        raise at.error(("smarthost",), "must be a mapping: {host: mail.example.org, port: 587}")
    for key in raw:
        if key not in SMARTHOST_KEYS:
            allowed = ", ".join(SMARTHOST_KEYS)
            raise at.error(("smarthost", key), f"unknown key {key!r}; allowed here: {allowed}")
    if "host" not in raw:
        raise at.error(("smarthost",), "needs host: the mail server to relay through")
    tls = raw.get("tls", "auto")
    if tls not in TLS_MODES:
        raise at.error(("smarthost", "tls"), f"must be one of {', '.join(TLS_MODES)}")
    username, password = raw.get("username"), raw.get("password")
    if (username is None) != (password is None):
        raise at.error(("smarthost",), "username and password go together: give both or neither")
    for key, value in (("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise at.error(("smarthost", key), "must be a string")
    verify = raw.get("verify", True)
    if not isinstance(verify, bool):
        raise at.error(("smarthost", "verify"), "must be true or false")
    return {
        "host": _text(raw, "host", "", at, ("smarthost",)),
        "port": _port(raw, ("smarthost", "port"), 465 if tls == "tls" else 25, at),
        "tls": tls,
        "username": username,
        "password": password,
        "timeout": _duration(raw, ("smarthost", "timeout"), "30s", at, positive=True),
        "verify": verify,
        "retry_first": _duration(raw, ("smarthost", "retry_first"), "10s", at, positive=True),
        "retry_max": _duration(raw, ("smarthost", "retry_max"), "15m", at, positive=True),
        "give_up_after": _duration(raw, ("smarthost", "give_up_after"), "5d", at, positive=True),
    }


def _domains(raw: Any, at: Where) -> list[str]:
    if raw is None:
        raise at.error(
            ("domains",), "is required: the domains to accept mail for, e.g. [example.org]"
        )
    if not isinstance(raw, list) or not raw:
        raise at.error(("domains",), "must be a non-empty list of domains, e.g. [example.org]")
    found = []
    for index, domain in enumerate(raw):
        if not isinstance(domain, str) or not _is_domain(domain.lower().rstrip(".")):
            raise at.error(
                ("domains", index),
                f"{domain!r} is not a domain; write it as example.org (IDNs in punycode: xn--…)",
            )
        found.append(domain.lower().rstrip("."))
    return list(dict.fromkeys(found))


def _is_domain(text: Any) -> bool:
    return isinstance(text, str) and len(text) <= 253 and bool(_DOMAIN_RE.match(text.lower()))


def _text(raw: Mapping[str, Any], key: str, default: str, at: Where, prefix: FieldPath = ()) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise at.error((*prefix, key), "must be a non-empty string")
    return value.strip()


def _port(raw: Mapping[str, Any], path: FieldPath, default: int, at: Where) -> int:
    value = raw.get(str(path[-1]), default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise at.error(path, f"must be a port number from 1 to 65535, got {value!r}")
    return value


def _count(raw: Mapping[str, Any], key: str, default: int, at: Where) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000:
        raise at.error((key,), f"must be a whole number from 1 to 10000, got {value!r}")
    return value


def _size(raw: Any, at: Where) -> int:
    size: float | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        size = raw
    elif isinstance(raw, str) and (match := _SIZE_RE.match(raw)):
        size = float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()]
    if size is None or not MIN_MESSAGE <= size <= MAX_MESSAGE:
        raise at.error(
            ("max_message_size",),
            f"must be a size from 1 KiB to 100 MiB such as 10 MiB or 524288, got {raw!r}",
        )
    return int(size)


def _duration(
    raw: Mapping[str, Any],
    path: FieldPath,
    default: str,
    at: Where,
    *,
    positive: bool = False,
) -> float:
    value = raw.get(str(path[-1]), default)
    try:
        seconds = parse_duration(str(value), bare_seconds=True)
    except DurationError as exc:
        raise at.error(path, str(exc)) from exc
    if positive and seconds <= 0:
        raise at.error(path, "must be more than zero")
    return seconds
