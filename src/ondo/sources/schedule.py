"""The `schedule` source: an event at each tick of a cron expression or a rate.

```yaml
sources:
  nightly:
    kind: schedule
    cron: "0 2 * * *"            # or rate: rate(5 minutes)
    timezone: Europe/Berlin      # IANA name; default UTC
    catch_up: true               # a tick missed while ondo was down fires once on start
    data: {report: daily}        # merged into each event's data
```

Each tick emits one event (type `schedule.tick` unless set), its id the tick's RFC 3339 time, so a
tick re-emitted after a crash is a duplicate the bus drops. All time is `ctx.clock`, so a manual
clock drives a schedule exactly. The last settled tick is kept with `ctx.save_state`: a restart
neither repeats ticks nor forgets where it was.

A tick noticed more than GRACE_S late (ondo was down, the machine slept, the clock jumped) was
missed: it is skipped, or with `catch_up: true` the latest missed tick fires once, with
`"catch_up": true` in its data. Ticks noticed within GRACE_S fire as usual (a quick restart or
a retry of the source does not lose them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ondo.errors import EventError
from ondo.events import CloudEvent
from ondo.sources.base import Settings, Where, no_unknown_keys
from ondo.sources.ticks import TickError, Ticks, as_datetime, check_cron, parse_rate, rfc3339

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.sources.base import SourceContext

log = logging.getLogger("ondo.sources.schedule")

DEFAULT_TYPE: Final = "schedule.tick"
GRACE_S: Final = 60.0  # later than this, a tick was missed (as Quartz's misfire threshold)
MAX_SLEEP_S: Final = 30.0  # re-read the clock at least this often (a wall clock may be reset)
RESERVED: Final = ("scheduled_time", "schedule", "timezone", "catch_up")
ALLOWED: Final = ("cron", "rate", "timezone", "catch_up", "type", "subject", "data")
LAST_TICK: Final = "last_tick"  # every tick up to this instant was emitted or knowingly skipped
FINGERPRINT: Final = "schedule"  # the schedule that last_tick belongs to


class ScheduleKind:
    name = "schedule"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        no_unknown_keys(settings, ALLOWED, at)
        ticks = _ticks(settings, at)
        spec: Settings = {
            "cron": ticks.cron,
            "rate": settings.get("rate"),
            "every_s": ticks.every_s,
            "timezone": ticks.timezone,
            "catch_up": _flag(settings, "catch_up", at),
            "type": _text(settings, "type", DEFAULT_TYPE, at),
            "subject": _text(settings, "subject", None, at),
            "data": _data(settings, at),
        }
        try:  # the attributes' own rules (CloudEvents), checked once here
            CloudEvent(source="schedule", type=spec["type"], subject=spec["subject"])
        except EventError as exc:
            raise at.error(("type",), str(exc)) from None
        return spec

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        spec = dict(source.spec)
        ticks = Ticks.from_spec(spec)
        last = await _resume_point(ctx, spec)
        while True:
            upcoming = ticks.after(last)
            if upcoming is None:
                ctx.problem(f"the schedule {_label(spec)} has no tick after {rfc3339(last)}")
                return
            ctx.connected(f"next tick {rfc3339(upcoming)}")
            await _sleep_until(ctx, upcoming)
            last = await _fire_due(ctx, spec, ticks, last)


async def _resume_point(ctx: SourceContext, spec: Settings) -> float:
    """Where the schedule stands: its last settled tick, or now for a new (or changed) one."""
    state = await ctx.state()
    fingerprint = _fingerprint(spec)
    saved = _number(state.get(LAST_TICK))
    if saved is not None and state.get(FINGERPRINT) == fingerprint:
        return saved
    now = ctx.clock.now()
    await ctx.save_state(FINGERPRINT, fingerprint)
    await ctx.save_state(LAST_TICK, repr(now))
    return now


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:  # unreadable (written by hand?): start afresh rather than fail forever
        return None


async def _sleep_until(ctx: SourceContext, moment: float) -> None:
    while (left := moment - ctx.clock.now()) > 0:
        await ctx.clock.sleep(min(left, MAX_SLEEP_S))


async def _fire_due(ctx: SourceContext, spec: Settings, ticks: Ticks, last: float) -> float:
    """Emit the ticks due after `last` (see the module docstring); the new last settled tick."""
    now = ctx.clock.now()
    late_before = now - GRACE_S
    events = []
    missed = ticks.at_or_before(late_before)
    if missed is not None and missed > last:
        log.warning(
            "schedule %s/%s missed ticks up to %s (ondo was down or the clock jumped)%s",
            ctx.namespace,
            ctx.name,
            rfc3339(missed),
            "; the latest fires now (catch_up)" if spec["catch_up"] else "",
        )
        if spec["catch_up"]:
            events.append(tick_event(ctx.name, spec, missed, catch_up=True))
        last = missed
    while (tick := ticks.after(last)) is not None and tick <= now:
        events.append(tick_event(ctx.name, spec, tick))
        last = tick
    await ctx.emit_many(events)
    await ctx.save_state(LAST_TICK, repr(last))
    return last


def tick_event(source: str, spec: Settings, tick: float, catch_up: bool = False) -> CloudEvent:
    """The event of one tick; its id is the tick's time, so it is emitted at most once."""
    scheduled = rfc3339(tick)
    data: dict[str, Any] = dict(spec.get("data") or {})
    data.update(scheduled_time=scheduled, schedule=_label(spec), timezone=spec["timezone"])
    if catch_up:
        data["catch_up"] = True
    return CloudEvent(
        id=f"tick-{scheduled}",
        source=source,
        type=spec["type"],
        subject=spec["subject"],
        time=as_datetime(tick),
        datacontenttype="application/json",
        data=data,
    )


def _label(spec: Settings) -> str:
    return str(spec["cron"] if spec["cron"] is not None else spec["rate"])


def _fingerprint(spec: Settings) -> str:
    return json.dumps([spec["cron"], spec["every_s"], spec["timezone"]])


# --- validation -----------------------------------------------------------------------------


def _ticks(settings: Mapping[str, Any], at: Where) -> Ticks:
    cron, rate = settings.get("cron"), settings.get("rate")
    if (cron is None) == (rate is None):
        raise at.error((), "a schedule needs exactly one of cron: or rate:")
    zone = _timezone(settings, at)
    if rate is not None:
        if not isinstance(rate, str):
            raise at.error(("rate",), "rate must be text such as rate(5 minutes) or 30s")
        try:
            return Ticks(None, parse_rate(rate), zone)
        except TickError as exc:
            raise at.error(("rate",), str(exc)) from None
    if not isinstance(cron, str):
        raise at.error(("cron",), "cron must be text such as '0 9 * * 1-5'")
    try:
        check_cron(cron)
    except ImportError:
        raise at.error(
            ("cron",), "cron schedules need croniter; install it with: pip install 'ondo[schedule]'"
        ) from None
    except TickError as exc:
        raise at.error(("cron",), str(exc)) from None
    ticks = Ticks(cron.strip(), None, zone)
    if ticks.after(0.0) is None:
        raise at.error(
            ("cron",), f"cron {cron!r} never fires (no such date, e.g. February 30); fix the date"
        )
    return ticks


def _timezone(settings: Mapping[str, Any], at: Where) -> str:
    name = settings.get("timezone", "UTC")
    if not isinstance(name, str) or not name:
        raise at.error(("timezone",), "timezone must be an IANA name such as Europe/Berlin")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise at.error(
            ("timezone",), f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None
    return name


def _flag(settings: Mapping[str, Any], key: str, at: Where) -> bool:
    value = settings.get(key, False)
    if not isinstance(value, bool):
        raise at.error((key,), f"{key} must be true or false, got {value!r}")
    return value


def _text(settings: Mapping[str, Any], key: str, default: str | None, at: Where) -> Any:
    value = settings.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise at.error((key,), f"{key} must be non-empty text, got {value!r}")
    return value


def _data(settings: Mapping[str, Any], at: Where) -> dict[str, Any]:
    data = settings.get("data", {})
    if not isinstance(data, dict):
        raise at.error(("data",), "data must be a mapping; it is merged into each event's data")
    for key in data:
        if key in RESERVED:
            raise at.error(("data", key), f"{key!r} is set by the schedule; choose another key")
    try:
        return dict(json.loads(json.dumps(data)))
    except (TypeError, ValueError) as exc:
        raise at.error(("data",), f"data must be plain JSON: {exc}") from None


KIND = ScheduleKind()
