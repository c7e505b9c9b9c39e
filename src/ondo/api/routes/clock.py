"""The platform clock: GET /v1/clock, and POST /v1/clock/advance on a manual-clock platform."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import answer, audit_note, json_body, platform_of
from ondo.clock import ManualClock
from ondo.errors import Conflict, ValidationError
from ondo.platform import Platform

MAX_ADVANCE_S = 100 * 365 * 86400  # a century: larger moves would overflow the clock's float


def _manual_clock(platform: Platform) -> ManualClock:
    clock = platform.clock
    if not platform.config.manual_clock or not isinstance(clock, ManualClock):
        raise Conflict(
            "this platform runs on the wall clock, which cannot be moved; start it with"
            " ONDO_CLOCK=manual (e.g. `ONDO_CLOCK=manual ondo up`) to drive time by hand"
        )
    return clock


async def get_clock(request: Request) -> JSONResponse:
    """The platform's time (epoch seconds) and whether it is the manual clock."""
    platform = platform_of(request)
    manual = platform.config.manual_clock and isinstance(platform.clock, ManualClock)
    return answer({"now": platform.clock.now(), "manual": manual})


async def advance_clock(request: Request) -> JSONResponse:
    """Dispatch what is on the bus, move the clock, then fire the timers that fell due."""
    platform = platform_of(request)
    clock = _manual_clock(platform)
    body = await json_body(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        seconds = -1
    if not 0 <= seconds <= MAX_ADVANCE_S:
        raise ValidationError(f'body must be {{"seconds": N}} with 0 ≤ N ≤ {MAX_ADVANCE_S}')
    dispatcher = platform.rules.dispatcher
    before = await dispatcher.settle() if dispatcher else {}
    now = clock.advance(float(seconds))
    audit_note(request, resource="clock", seconds=seconds, now=now)
    after = await dispatcher.settle() if dispatcher else {}
    return answer({"now": now, "before": before, "after": after})


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/clock", get_clock, methods=["GET"]),
        Route("/v1/clock/advance", advance_clock, methods=["POST"]),
    ]
