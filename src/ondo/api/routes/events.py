"""Events: ingest (CloudEvents HTTP binding), read/long-poll the log, show one event, replay.

Ingest modes (CloudEvents HTTP protocol binding 1.0):
- binary: any `ce-*` header; attributes in headers, the payload is the body (Content-Type is
  `datacontenttype`). Decoded with the cloudevents SDK's binding, our own checks on top.
- structured: `application/cloudevents+json`, or `application/json` holding one event object.
- batch: `application/cloudevents-batch+json`, or `application/json` holding an array.
Structured and batch bodies are read by `CloudEvent.from_json_dict` (the SDK's JSON reader accepts
timestamps that are not RFC 3339). A batch with one bad event is refused whole, naming its index;
a batch of more than `max_batch_events` events is refused whole with 413. Every JSON body goes
through `ondo.boundedjson` (depth and integer limits), and a large body is decoded and validated
on a worker thread so the event loop keeps answering other requests meanwhile.
202 is sent only after the bus has made the events durable.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ondo.api.http import (
    answer,
    audit_note,
    decode_json,
    int_param,
    namespace_of,
    off_loop_if_large,
    parse_json,
    platform_of,
    principal_of,
    read_body,
)
from ondo.backends.bus import StoredEvent
from ondo.backends.bus.base import type_matches
from ondo.durations import accepted_forms, parse_duration
from ondo.errors import (
    DurationError,
    EventError,
    Gone,
    InputLimitExceeded,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ondo.errors import ValidationError as InvalidRequest
from ondo.events import HOPS_EXTENSION, CloudEvent, format_time, parse_time
from ondo.platform import Platform
from ondo.security.policy import Permission, require
from ondo.security.tokens import Principal

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_WAIT_S = 60
WAIT_SLICE_S = 1.0
MAX_SCAN_PAGES = 20  # a filtered long-poll scans at most this many pages per request
MAX_REPLAY = 10_000
DEFAULT_MAX_BATCH_EVENTS = 1000


# --- ingest ---------------------------------------------------------------------------------


async def ingest(request: Request) -> JSONResponse:
    """Accept CloudEvents (structured, batch or binary mode); 202 once durably appended."""
    platform = platform_of(request)
    config = platform.config
    body = await read_body(request, config.max_body_bytes)
    events = await off_loop_if_large(
        len(body),
        decode_checked,
        request.headers,
        body,
        config.max_event_bytes,
        config.max_batch_events,
    )
    require_emit(principal_of(request), events)
    results = await platform.bus.append(events, namespace_of(request))
    platform.metrics.events_appended(namespace_of(request), sum(not r.duplicate for r in results))
    return answer(
        {
            "ids": [e.id for e in events],
            "seqs": [r.seq for r in results],
            "duplicates": [e.id for e, r in zip(events, results, strict=True) if r.duplicate],
        },
        202,
    )


def require_emit(principal: Principal, events: Sequence[CloudEvent]) -> None:
    """Each event's type must be one the caller may emit (a function's token lists its types);
    one that is not refuses the whole request (403), before anything is appended."""
    for event_type in dict.fromkeys(event.type for event in events):
        require(principal, Permission.EMIT, "POST /v1/events", f"type:{event_type}")


def decode_checked(
    headers: Mapping[str, str], body: bytes, max_event_bytes: int, max_batch_events: int
) -> list[CloudEvent]:
    """`decode_request`, then each event's size checked (which also encodes it, once)."""
    events = decode_request(headers, body, max_batch_events)
    for index, event in enumerate(events):
        _check_size(event, max_event_bytes, index if len(events) > 1 else None)
    return events


def decode_request(
    headers: Mapping[str, str], body: bytes, max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
) -> list[CloudEvent]:
    """The events in an HTTP request, in any of the three content modes."""
    if any(name.lower().startswith("ce-") for name in headers):
        return [_decode_binary(headers, body)]
    media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type not in (STRUCTURED, BATCH, "application/json"):
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not a CloudEvents mode: send {STRUCTURED}, {BATCH}, "
            "application/json, or the attributes as ce-* headers (binary mode)"
        )
    doc = parse_json(body, "event (request body)")
    if media_type == BATCH or (media_type == "application/json" and isinstance(doc, list)):
        return _decode_batch(doc, max_batch_events)
    return [CloudEvent.from_json_dict(doc)]


def _decode_batch(doc: Any, max_batch_events: int) -> list[CloudEvent]:
    if not isinstance(doc, list):
        raise EventError(f"a {BATCH} body must be a JSON array of events")
    if not doc:
        raise EventError("the batch is empty: send at least one event")
    if len(doc) > max_batch_events:
        raise PayloadTooLarge(
            f"the batch holds {len(doc)} events; the limit is {max_batch_events} events per "
            "batch (setting max_batch_events, ONDO_MAX_BATCH_EVENTS): split it; "
            "no event was accepted"
        )
    events = []
    for index, item in enumerate(doc):
        try:
            events.append(CloudEvent.from_json_dict(item))
        except EventError as exc:
            raise EventError(
                f"event [{index}] of the batch: {exc}; no event was accepted"
            ) from None
    return events


class _StrictJSONFormat(JSONFormat):
    """The SDK's JSON format, but a JSON content type whose body does not parse is an error."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        if not body:
            return None
        content_type = datacontenttype or self.DEFAULT_CONTENT_TYPE
        if re.match(JSONFormat.JSON_CONTENT_TYPE_PATTERN, content_type):
            try:
                return parse_json(body, f"'data' (the request body, Content-Type {content_type!r})")
            except InputLimitExceeded:
                raise
            except InvalidRequest as exc:
                raise EventError(str(exc)) from None
        if content_type.startswith("text/"):
            try:
                return body.decode()
            except UnicodeDecodeError:
                return body
        return body


def _decode_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    message = HTTPMessage(headers=dict(headers), body=body)
    try:
        # The factory captures what the SDK decoded; CloudEvent.from_json_dict validates it.
        decoded: Any = from_binary(message, _StrictJSONFormat(), cast(Any, _capture))
    except ValueError as exc:  # the SDK's timestamp parser
        raise EventError(f"attribute 'time' (header ce-time) is not a timestamp: {exc}") from None
    attributes, data = decoded
    doc: dict[str, Any] = dict(attributes)
    if isinstance(doc.get("time"), datetime):
        doc["time"] = _header_time(doc["time"])
    hops = doc.get(HOPS_EXTENSION)
    # Headers carry every extension as text; isdigit alone also passes digits such as '²'.
    if isinstance(hops, str) and hops.isascii() and hops.isdigit():
        if len(hops) > _MAX_HOPS_DIGITS:
            raise EventError(
                f"header ce-{HOPS_EXTENSION} holds {len(hops)} digits; at most {_MAX_HOPS_DIGITS}"
            )
        doc[HOPS_EXTENSION] = int(hops)
    if isinstance(data, bytes):
        doc["data_base64"] = base64.b64encode(data).decode("ascii")
    else:
        doc["data"] = data
    return CloudEvent.from_json_dict(doc)


_MAX_HOPS_DIGITS = 9  # rule hops; int() refuses past 4,300 digits, and no chain is that long


def _capture(attributes: dict[str, Any], data: Any) -> tuple[dict[str, Any], Any]:
    return attributes, data


def _header_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise EventError(f"attribute 'time' (header ce-time) has no UTC offset: {value}")
    return format_time(value)


def _check_size(event: CloudEvent, limit: int, index: int | None) -> None:
    try:
        event.check_size(limit)
    except PayloadTooLarge as exc:
        where = f"event [{index}] of the batch: " if index is not None else ""
        raise PayloadTooLarge(f"{where}{exc}; no event was accepted") from None


# --- reading the log ------------------------------------------------------------------------


async def list_events(request: Request) -> JSONResponse:
    """Events after `after` (long-poll with `wait`), or the latest ones; filter with `type`."""
    platform = platform_of(request)
    namespace = namespace_of(request)
    type_glob = request.query_params.get("type") or None
    limit = int_param(request, "limit", 100, 1, 1000)
    if "after" not in request.query_params:
        found = await platform.bus.tail(limit, type_glob, namespace)
        last = found[-1].seq if found else await platform.bus.last_seq()
        return answer({"events": [s.to_json() for s in found], "next": last})
    after = int_param(request, "after", 0, 0, 2**62)
    wait = int_param(request, "wait", 0, 0, MAX_WAIT_S)
    found, cursor = await _read_matching(request, after, limit, type_glob, wait)
    return answer({"events": [s.to_json() for s in found], "next": cursor})


async def _read_matching(
    request: Request, after: int, limit: int, type_glob: str | None, wait: int
) -> tuple[list[StoredEvent], int]:
    """Scan forward from `after` for matching events; wait up to `wait` s if there are none."""
    platform, namespace = platform_of(request), namespace_of(request)
    deadline = time.monotonic() + wait
    cursor = after
    while True:
        for _ in range(MAX_SCAN_PAGES):
            batch = await platform.bus.read(cursor, limit)
            if not batch:
                break
            cursor = batch[-1].seq
            matches = [s for s in batch if _selected(s, type_glob, namespace)]
            if matches:
                return matches, cursor
        remaining = deadline - time.monotonic()
        if remaining <= 0 or await request.is_disconnected():
            return [], cursor
        # Wait in slices, so a poll whose client went away does not hold the server's shutdown.
        await platform.bus.wait(cursor, min(remaining, WAIT_SLICE_S))


def _selected(stored: StoredEvent, type_glob: str | None, namespace: str) -> bool:
    return stored.namespace == namespace and type_matches(type_glob, stored.event.type)


async def show_event(request: Request) -> JSONResponse:
    """One stored event by id (add `source` when several sources used the same id)."""
    platform = platform_of(request)
    event_id = request.path_params["id"]
    found = await platform.bus.by_id(event_id, namespace_of(request))
    source = request.query_params.get("source")
    if source is not None:
        found = [s for s in found if s.event.source == source]
    if not found:
        deleted = await platform.tracer.deleted_event(event_id, namespace_of(request))
        if deleted is not None:
            raise Gone(deleted)
        where = f" from source {source!r}" if source else ""
        maybe = await platform.retention.may_have_deleted("events")
        why = f"never sent, or older than {maybe} and deleted" if maybe else "never sent"
        raise NotFound(f"event {event_id!r}{where} is not in the log ({why})")
    if len(found) > 1:
        sources = ", ".join(sorted({s.event.source for s in found}))
        raise InvalidRequest(
            f"event id {event_id!r} was used by several sources ({sources}); add ?source=SOURCE"
        )
    return answer(found[0].to_json())


# --- replay ---------------------------------------------------------------------------------


async def replay(request: Request) -> JSONResponse:
    """Re-dispatch the events received since a time (to one rule, or to all)."""
    platform = platform_of(request)
    body = await decode_json(await read_body(request, 64 * 1024))
    if not isinstance(body, dict) or "since" not in body:
        raise InvalidRequest('body must be {"since": TIME, "rule": NAME?, "type": GLOB?}')
    since = parse_since(body["since"], platform.clock.now())
    rule, type_glob = _optional_text(body, "rule"), _optional_text(body, "type")
    events = await collect_since(platform, since, type_glob, namespace_of(request))
    audit_note(
        request,
        resource=f"rule:{rule}" if rule else "events",
        since=format_time(since),
        type=type_glob,
        events=len(events),
        first_seq=events[0].seq if events else None,
        last_seq=events[-1].seq if events else None,
    )
    summary: dict[str, Any] = {
        "since": format_time(since),
        "rule": rule,
        "events": [{"seq": s.seq, "id": s.event.id, "type": s.event.type} for s in events],
        "truncated": len(events) >= MAX_REPLAY,
    }
    target = platform.replay_target
    if target is None:
        summary.update(dispatched=0, message="no dispatcher is running: nothing was re-dispatched")
        return answer(summary)
    summary["dispatched"] = await target.replay(events, rule)
    return answer(summary)


async def collect_since(
    platform: Platform, since: datetime, type_glob: str | None, namespace: str
) -> list[StoredEvent]:
    found: list[StoredEvent] = []
    after = 0
    while len(found) < MAX_REPLAY:
        page = await platform.bus.since(
            since, type_glob, after_seq=after, limit=1000, namespace=namespace
        )
        if not page:
            break
        found.extend(page)
        after = page[-1].seq
    return found[:MAX_REPLAY]


def parse_since(value: Any, now: float) -> datetime:
    """An RFC 3339 time, or a duration back from now (ondo.durations): `90s`, `2h`, `2w`."""
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except DurationError:
            pass
        else:
            try:
                return datetime.fromtimestamp(now, UTC) - timedelta(seconds=seconds)
            except OverflowError:
                raise InvalidRequest(f"since {value!r} reaches back before the year 1") from None
    try:
        return parse_time(value, "since")
    except EventError as exc:
        duration = f"or give a duration back from now: {accepted_forms()}"
        raise InvalidRequest(f"{exc}; {duration}") from None


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest(f"field {name!r} must be a non-empty string")
    return value


def routes() -> list[BaseRoute]:
    return [
        Route("/v1/events", ingest, methods=["POST"]),
        Route("/v1/events", list_events, methods=["GET"]),
        Route("/v1/events/replay", replay, methods=["POST"]),
        Route("/v1/events/{id}", show_event, methods=["GET"]),
    ]
