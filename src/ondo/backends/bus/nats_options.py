"""The options of a `nats://` bus URL and the cluster name, checked before anything connects.

`nats://HOST:PORT[,HOST:PORT…]?max_age=7d&max_bytes=10GiB&replicas=1&timeout=5s`

- `max_age`: drop events older than this (server side; `0` keeps them until `prune` or
  `max_bytes`); a duration such as `90s`, `12h`, `7d`, `2w` or plain seconds. Default 7d.
- `max_bytes`: drop the oldest events when the stream is larger (`512MiB`, `10G`, or bytes;
  `0` means no limit). Default no limit.
- `replicas`: copies of the stream and the offsets in a NATS cluster (1-5). Default 1.
- `timeout`: how long a NATS request (an append's acknowledgement, a read) may take. Default 5s.

The cluster name prefixes the stream, the offsets bucket and every subject, so several ondo
clusters (and parallel test runs) share one NATS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ondo.errors import ConfigError

DEFAULT_CLUSTER = "ondo"
DEFAULT_MAX_AGE_S = 7 * 86400.0
DEFAULT_TIMEOUT_S = 5.0
KNOWN_OPTIONS = ("dedup_window", "max_age", "max_bytes", "replicas", "timeout")

_CLUSTER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)")
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


@dataclass(frozen=True)
class NatsOptions:
    servers: tuple[str, ...]
    cluster: str = DEFAULT_CLUSTER
    max_age_s: float = DEFAULT_MAX_AGE_S
    max_bytes: int = 0
    replicas: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def stream(self) -> str:
        return f"{self.cluster}_events"

    @property
    def offsets_bucket(self) -> str:
        return f"{self.cluster}_offsets"

    @property
    def subject_root(self) -> str:
        return f"{self.cluster}.ev"

    @property
    def tick_subject(self) -> str:
        return f"{self.cluster}.appended"


def check_cluster(name: str) -> str:
    if not _CLUSTER.fullmatch(name):
        raise ConfigError(
            f"cluster name {name!r} cannot name NATS streams and subjects: use 1-64 letters, "
            "digits, '-' or '_' (e.g. --cluster ondo or ONDO_CLUSTER=staging)"
        )
    return name


def parse_nats_url(url: str, options: dict[str, str], cluster: str) -> NatsOptions:
    """`options` are the URL's query options left after the common ones (dedup_window)."""
    check_cluster(cluster)
    servers = _servers(url)
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ConfigError(
            f"bus URL {url!r} has unknown option(s) {unknown}; known for nats://: "
            + ", ".join(KNOWN_OPTIONS)
        )
    replicas = _integer(url, "replicas", options.get("replicas", "1"))
    if not 1 <= replicas <= 5:
        raise ConfigError(f"bus URL {url!r}: replicas must be 1 to 5, got {replicas}")
    timeout = _duration(url, "timeout", options.get("timeout"), DEFAULT_TIMEOUT_S)
    if timeout <= 0:
        raise ConfigError(f"bus URL {url!r}: timeout must be more than 0 (e.g. timeout=5s)")
    return NatsOptions(
        servers=servers,
        cluster=cluster,
        max_age_s=_duration(url, "max_age", options.get("max_age"), DEFAULT_MAX_AGE_S),
        max_bytes=_size(url, options.get("max_bytes")),
        replicas=replicas,
        timeout_s=timeout,
    )


def _servers(url: str) -> tuple[str, ...]:
    netloc = urlsplit(url).netloc
    hosts = [h for h in netloc.split(",") if h]
    if not hosts:
        raise ConfigError(f"bus URL {url!r} names no server: use nats://HOST:PORT")
    return tuple(h if h.startswith("nats://") else f"nats://{h}" for h in hosts)


def _duration(url: str, name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    text = raw.strip().lower()
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ConfigError(
                f"bus URL {url!r}: {name}={raw!r} is not a duration; "
                "write it like 90s, 12h, 7d, 2w or a number of seconds"
            ) from None
        value = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if value < 0:
        raise ConfigError(f"bus URL {url!r}: {name} must not be negative")
    return value


def _size(url: str, raw: str | None) -> int:
    if raw is None:
        return 0
    match = _SIZE.fullmatch(raw.strip().lower())
    if match is None:
        raise ConfigError(
            f"bus URL {url!r}: max_bytes={raw!r} is not a size; "
            "write it like 512MiB, 10G or a number of bytes (0: no limit)"
        )
    number, prefix, suffix = match.groups()
    base = 1024 if suffix.startswith("i") else 1000
    return int(float(number) * base ** _SIZE_POWERS[prefix])


def _integer(url: str, name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"bus URL {url!r}: {name}={raw!r} must be a whole number") from None
