"""The CloudEvents HTTP binding at the API boundary: content modes, header decoding, durations."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from ondo.api.routes.events import decode_request, parse_since
from ondo.errors import EventError, UnsupportedMediaType, ValidationError

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
ONE = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"a": 1}}


def test_structured_modes() -> None:
    body = json.dumps(ONE).encode()
    for content_type in ("application/cloudevents+json; charset=utf-8", "application/json"):
        (event,) = decode_request({"content-type": content_type}, body)
        assert event.data == {"a": 1}
    (event,) = decode_request({}, body)  # no Content-Type: read as JSON
    assert event.id == "1"


def test_batch_modes_and_the_index_of_a_bad_event() -> None:
    body = json.dumps([ONE, {**ONE, "id": "2"}]).encode()
    for content_type in ("application/cloudevents-batch+json", "application/json"):
        events = decode_request({"content-type": content_type}, body)
        assert [e.id for e in events] == ["1", "2"]
    bad = json.dumps([ONE, ONE, {**ONE, "source": ""}]).encode()
    with pytest.raises(EventError, match=r"event \[2\] of the batch: attribute 'source'"):
        decode_request({"content-type": "application/cloudevents-batch+json"}, bad)


def test_other_media_types_are_refused() -> None:
    with pytest.raises(UnsupportedMediaType, match="'application/xml'"):
        decode_request({"content-type": "application/xml"}, b"<e/>")


def test_binary_mode_round_trips_an_sdk_event() -> None:
    sdk = SdkEvent(
        attributes={
            "type": "t",
            "source": "/a b%c",  # percent-encoded in the header
            "id": "x",
            "time": datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
            "ondohops": 4,
            "region": "eu",
        },
        data={"k": [1, 2]},
    )
    message = to_binary_event(sdk)
    assert "%" in message.headers["ce-source"]
    (event,) = decode_request(message.headers, message.body)
    assert event.source == "/a b%c"
    assert event.time == datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert event.hops == 4 and event.extensions["region"] == "eu"
    assert event.data == {"k": [1, 2]}


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        ("text/plain", "héllo".encode(), "héllo"),
        ("application/octet-stream", b"\x00\x01", b"\x00\x01"),
        ("application/json", b"[1, 2]", [1, 2]),
        ("application/json", b"", None),
    ],
)
def test_binary_mode_payloads(content_type: str, body: bytes, data: object) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-source": "/s",
        "ce-type": "t",
        "content-type": content_type,
    }
    (event,) = decode_request(headers, body)
    assert event.data == data
    assert event.datacontenttype == content_type


def test_binary_mode_errors_name_the_attribute() -> None:
    base = {"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}
    with pytest.raises(EventError, match="'data'"):
        decode_request({**base, "content-type": "application/json"}, b"{")
    with pytest.raises(EventError, match="'time'"):
        decode_request({**base, "ce-time": "2024-05-01T12:00:00"}, b"")  # no offset
    with pytest.raises(EventError, match="'time'"):
        decode_request({**base, "ce-time": "soon"}, b"")
    with pytest.raises(EventError, match="'specversion'"):
        decode_request({**base, "ce-specversion": "0.3"}, b"")


@pytest.mark.parametrize(
    ("text", "seconds_back"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)],
)
def test_since_accepts_durations_back_from_now(text: str, seconds_back: float) -> None:
    assert parse_since(text, NOW).timestamp() == NOW - seconds_back


def test_since_accepts_rfc_3339_and_refuses_the_rest() -> None:
    assert parse_since("2024-01-01T00:00:00Z", NOW) == datetime(2024, 1, 1, tzinfo=UTC)
    for bad in ("yesterday", "15", 15, "2024-01-01"):
        with pytest.raises(ValidationError, match="15m, 2h, 1d"):
            parse_since(bad, NOW)
