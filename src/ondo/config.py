"""Platform settings: command-line flags over ONDO_* environment variables over defaults."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ondo.destinations import parse_destination
from ondo.durations import parse_duration
from ondo.errors import ConfigError, DurationError

DEFAULT_PORT = 8080
DAY_S = 86400.0
# `--retention KIND=DURATION` / ONDO_RETENTION_KIND: the Config field each kind sets
RETENTION_KINDS = {
    "events": "retention_events_s",
    "records": "retention_records_s",
    "jobs": "retention_jobs_s",
}
DEFAULT_CLUSTER = "ondo"
_CLUSTER_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


DESTINATIONS = ("all", "failed", "none")


@dataclass(frozen=True)
class RateLimit:
    """`per_s` requests a second on average, `burst` at once; per_s == 0: no limit
    (security/ratelimit.py applies it)."""

    per_s: float
    burst: float

    @property
    def enabled(self) -> bool:
        return self.per_s > 0

    def __str__(self) -> str:
        return f"{self.per_s:g}/s (burst {self.burst:g})" if self.enabled else "off"


# Generous: far above what bench/ and the functional suite send (docs/security.md).
DEFAULT_PRINCIPAL_RATE = RateLimit(20000.0, 40000.0)
DEFAULT_ANONYMOUS_RATE = RateLimit(200.0, 2000.0)
DEFAULT_SOURCE_RATE = RateLimit(20000.0, 40000.0)
# `--rate-limit KIND=RATE[:BURST]` / ONDO_RATE_LIMIT_KIND: the Config field each kind sets
RATE_KINDS = {
    "principal": "rate_principal",
    "anonymous": "rate_anonymous",
    "source": "rate_source",
}


@dataclass(frozen=True)
class QueueSettings:
    """How hard the action queue tries; ONDO_ACTION_* environment variables override the
    defaults (`queue_settings`)."""

    workers: int = 64
    max_attempts: int = 3
    backoff_s: float = 1.0  # delay before the 2nd attempt; doubles (factor) for each one after
    backoff_factor: float = 2.0
    backoff_cap_s: float = 300.0
    max_event_age_s: float = 6 * 3600.0
    idle_poll_s: float = 1.0  # longest wait between looks for due retries
    destinations: str = "all"  # which outcomes become events: all, failed or none
    stop_grace_s: float = 10.0


@dataclass(frozen=True)
class Config:
    """Everything `ondo up` needs to know; paths are absolute."""

    data_dir: Path = field(default_factory=lambda: Path(".ondo").resolve())
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    apps: tuple[Path, ...] = ()
    bus_url: str = ""  # default: sqlite under data_dir
    store_url: str = ""  # default: sqlite under data_dir
    # prefixes streams, consumers, subjects and the PostgreSQL schema: clusters share servers
    cluster: str = DEFAULT_CLUSTER
    store_durability: str = "normal"
    idle_ttl_s: float = 60.0  # warm workers are reaped after this long unused (scale to zero)
    max_body_bytes: int = 6 * 1024 * 1024
    max_event_bytes: int = 256 * 1024
    max_batch_events: int = 1000  # events in one batch request (413 above; see docs/events.md)
    log_capture_bytes: int = 64 * 1024
    manual_clock: bool = False  # tests drive time through the API instead of the wall clock
    # host ip:port every `network` function may reach (the host is otherwise off limits)
    egress_allow: tuple[str, ...] = ()
    # dependency builds: the index they reach, and whether requirements may name others
    build_index_url: str = "https://pypi.org/simple"
    build_allow_index_options: bool = False
    actions: QueueSettings = field(default_factory=QueueSettings)
    # Retention (math.inf: kept forever): events in the log; invocation records and rule
    # decisions; finished (succeeded or discarded) action jobs. See docs/operations.md.
    retention_events_s: float = 7 * DAY_S
    retention_records_s: float = 30 * DAY_S
    retention_jobs_s: float = 7 * DAY_S
    retention_every_s: float = 10.0  # how often retention looks for rows to delete
    wal_limit_mb: int = 64  # each SQLite file's write-ahead log is truncated back beyond this
    mqtt_url: str = "mqtt://127.0.0.1:1883"  # the broker of `mqtt` actions without their own
    # signs `webhook` actions (docs/actions.md); kept out of repr so it never lands in a log
    webhook_secret: str = field(default="", repr=False)
    # encrypts secrets at rest (security/secretbox.py); needed when several processes share
    # the store, else <data-dir>/secrets.key is made on first use. Kept out of repr.
    secrets_key: str = field(default="", repr=False)
    # requests a second: API calls per principal; calls without a valid token per address;
    # http sources' routes per (source, address). See docs/security.md "Ingress limits".
    rate_principal: RateLimit = DEFAULT_PRINCIPAL_RATE
    rate_anonymous: RateLimit = DEFAULT_ANONYMOUS_RATE
    rate_source: RateLimit = DEFAULT_SOURCE_RATE
    # TLS: both or neither; `ondo up` serves https with them
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(
                "TLS needs both a certificate and its private key: pass --tls-cert FILE and"
                " --tls-key FILE (or ONDO_TLS_CERT and ONDO_TLS_KEY), or neither"
            )
        if self.retention_records_s < self.retention_events_s:
            # A replayed event finds its decision and does not fire again only while it is kept.
            raise ConfigError(
                "the retention of records (rule decisions) must be at least that of events, "
                f"got records {self.retention_records_s:g}s < events {self.retention_events_s:g}s: "
                "raise ONDO_RETENTION_RECORDS (or --retention records=…) or lower the events'"
            )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ondo.db"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def effective_bus_url(self) -> str:
        return self.bus_url or f"sqlite:///{self.data_dir / 'bus.db'}"

    @property
    def effective_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.db_path}"

    @property
    def metrics_token_path(self) -> Path:
        return self.data_dir / "metrics.token"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def with_overrides(self, **values: Any) -> Config:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None


def env_port(default: int | None = None) -> int | None:
    """$ONDO_PORT as a port number (what `make run PORT=…` sets), or `default`."""
    raw = os.environ.get("ONDO_PORT", "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"environment variable ONDO_PORT must be a port number, got {raw!r}")
    return int(raw)


def _env_count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"environment variable {name} must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


def from_environment() -> Config:
    """Defaults overridden by ONDO_* variables; flags are applied on top by the CLI."""
    base = Config()
    return base.with_overrides(
        data_dir=Path(os.environ["ONDO_DATA_DIR"]).resolve()
        if os.environ.get("ONDO_DATA_DIR")
        else None,
        bus_url=os.environ.get("ONDO_BUS") or os.environ.get("ONDO_BUS_URL") or None,
        store_url=os.environ.get("ONDO_STORE") or None,
        cluster=check_cluster(os.environ["ONDO_CLUSTER"], "ONDO_CLUSTER")
        if os.environ.get("ONDO_CLUSTER")
        else None,
        host=os.environ.get("ONDO_HOST") or None,
        port=env_port(),
        idle_ttl_s=_env_float("ONDO_IDLE_TTL", base.idle_ttl_s),
        max_batch_events=_env_count("ONDO_MAX_BATCH_EVENTS", base.max_batch_events),
        manual_clock=os.environ.get("ONDO_CLOCK", "") == "manual" or None,
        egress_allow=_env_destinations("ONDO_EGRESS_ALLOW"),
        build_index_url=os.environ.get("ONDO_BUILD_INDEX_URL") or None,
        build_allow_index_options=os.environ.get("ONDO_BUILD_ALLOW_INDEX_OPTIONS", "") == "1"
        or None,
        actions=queue_settings(os.environ),
        retention_every_s=_env_duration("ONDO_RETENTION_EVERY"),
        wal_limit_mb=_env_count("ONDO_WAL_LIMIT_MB", base.wal_limit_mb),
        mqtt_url=os.environ.get("ONDO_MQTT_URL") or None,
        webhook_secret=os.environ.get("ONDO_WEBHOOK_SECRET") or None,
        secrets_key=os.environ.get("ONDO_SECRETS_KEY") or None,
        tls_cert=_env_path("ONDO_TLS_CERT"),
        tls_key=_env_path("ONDO_TLS_KEY"),
        **_env_rate_limits(),
        **{
            field_name: _env_duration(f"ONDO_RETENTION_{kind.upper()}")
            for kind, field_name in RETENTION_KINDS.items()
        },
    )


def secret_from_environment(name: str) -> str | None:
    """A secret a rule names by its environment variable (webhook's `secret_env`): read when
    it is used, so a secret set for the platform is found without copying it into Config."""
    return os.environ.get(name) or None


def queue_settings(env: Mapping[str, str]) -> QueueSettings:
    """The action queue's defaults overridden by ONDO_ACTION_* variables of `env`."""
    base = QueueSettings()
    return replace(
        base,
        workers=int(_positive(env, "ONDO_ACTION_WORKERS", base.workers)),
        max_attempts=int(_positive(env, "ONDO_ACTION_MAX_ATTEMPTS", base.max_attempts)),
        backoff_s=_positive(env, "ONDO_ACTION_BACKOFF", base.backoff_s),
        backoff_factor=_positive(env, "ONDO_ACTION_BACKOFF_FACTOR", base.backoff_factor),
        backoff_cap_s=_positive(env, "ONDO_ACTION_BACKOFF_CAP", base.backoff_cap_s),
        max_event_age_s=_positive(env, "ONDO_ACTION_MAX_AGE", base.max_event_age_s),
        destinations=_choice(env, "ONDO_ACTION_DESTINATIONS", DESTINATIONS),
    )


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "") or allowed[0]
    if raw not in allowed:
        raise ConfigError(f"environment variable {name} must be one of {', '.join(allowed)}")
    return raw


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be greater than 0, got {raw!r}")
    return value


def retention_duration(text: str, where: str) -> float:
    """A retention as seconds: 30s, 15m, 2h, 7d, 1h30m, or `forever` (math.inf)."""
    if text.strip().lower() == "forever":
        return math.inf
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{where}: a retention must be more than zero (or `forever`)")
    return seconds


def retention_overrides(items: list[str], where: str = "--retention") -> dict[str, float]:
    """`KIND=DURATION` items (kinds: events, records, jobs) as Config field values."""
    values: dict[str, float] = {}
    for item in items:
        kind, _, duration = item.partition("=")
        if kind not in RETENTION_KINDS or not duration:
            raise ConfigError(
                f"{where} {item!r} must be KIND=DURATION with KIND one of "
                f"{', '.join(RETENTION_KINDS)}, e.g. {where} events=7d"
            )
        values[RETENTION_KINDS[kind]] = retention_duration(duration, f"{where} {kind}")
    return values


def rate_limit(text: str, where: str) -> RateLimit:
    """`RATE` or `RATE:BURST` (requests a second, requests at once; BURST defaults to twice
    RATE); `0` turns the limit off."""
    rate, colon, burst = text.strip().partition(":")
    try:
        per_s = float(rate)
        size = float(burst) if colon else 2 * per_s
    except ValueError:
        per_s = size = math.nan
    if per_s == 0:
        return RateLimit(0.0, 0.0)
    if not (0 < per_s < math.inf and 1 <= size < math.inf):
        raise ConfigError(
            f"{where}: {text!r} must be RATE or RATE:BURST, requests a second and at once"
            " (e.g. 500 or 500:2000; BURST at least 1), or 0 for no limit"
        )
    return RateLimit(per_s, size)


def rate_overrides(items: list[str], where: str = "--rate-limit") -> dict[str, RateLimit]:
    """`KIND=RATE[:BURST]` items (kinds: principal, anonymous, source) as Config values."""
    values: dict[str, RateLimit] = {}
    for item in items:
        kind, _, limit = item.partition("=")
        if kind not in RATE_KINDS or not limit:
            raise ConfigError(
                f"{where} {item!r} must be KIND=RATE[:BURST] with KIND one of "
                f"{', '.join(RATE_KINDS)}, e.g. {where} principal=500:1000 (0 turns it off)"
            )
        values[RATE_KINDS[kind]] = rate_limit(limit, f"{where} {kind}")
    return values


def _env_rate_limits() -> dict[str, RateLimit]:
    values: dict[str, RateLimit] = {}
    for kind, field_name in RATE_KINDS.items():
        name = f"ONDO_RATE_LIMIT_{kind.upper()}"
        raw = os.environ.get(name, "")
        if raw.strip():
            values[field_name] = rate_limit(raw, f"environment variable {name}")
    return values


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name, "")
    return Path(raw).resolve() if raw.strip() else None


def _env_duration(name: str) -> float | None:
    raw = os.environ.get(name, "")
    return retention_duration(raw, f"environment variable {name}") if raw.strip() else None


def _env_destinations(name: str) -> tuple[str, ...] | None:
    """A comma- or space-separated list of ip:port, each checked now rather than at deploy."""
    items = tuple(os.environ.get(name, "").replace(",", " ").split())
    for item in items:
        try:
            parse_destination(item)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {name}: {exc}") from None
    return items or None


def check_cluster(name: str, where: str) -> str:
    """A cluster name as it prefixes NATS subjects and names a PostgreSQL schema."""
    if not _CLUSTER_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: cluster name {name!r} must be 1-40 characters: a lowercase letter, "
            "then lowercase letters, digits or '_' (it names NATS streams and a PostgreSQL schema)"
        )
    return name
