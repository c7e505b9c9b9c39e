"""CloudEvent: the structured JSON form, spec validation naming the attribute, the size limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ondo.errors import EventError, PayloadTooLarge
from ondo.events import HOPS_EXTENSION, CloudEvent, format_time, parse_time


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/orders",
        "type": "order.created",
        **extra,
    }


def test_json_form_round_trips_every_attribute() -> None:
    event = CloudEvent(
        id="e-1",
        source="/orders",
        type="order.created",
        subject="order/42",
        time=datetime(2024, 5, 1, 14, 0, 0, 500000, tzinfo=timezone(timedelta(hours=2))),
        datacontenttype="application/json",
        dataschema="https://example.com/order.json",
        data={"total": 12.5, "items": [1, 2]},
        extensions={"region": "eu", HOPS_EXTENSION: 3, "urgent": True},
    )
    doc = event.to_json_dict()
    assert doc == {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/orders",
        "type": "order.created",
        "subject": "order/42",
        "time": "2024-05-01T12:00:00.500000Z",
        "datacontenttype": "application/json",
        "dataschema": "https://example.com/order.json",
        "region": "eu",
        "ondohops": 3,
        "urgent": True,
        "data": {"total": 12.5, "items": [1, 2]},
    }
    again = CloudEvent.from_json_dict(json.loads(json.dumps(doc)))
    assert again == event
    assert again.hops == 3
    assert CloudEvent.decode(event.encoded) == event


def test_bytes_data_travels_as_data_base64() -> None:
    event = CloudEvent(source="s", type="t", data=b"\x00\xffbinary")
    doc = event.to_json_dict()
    assert "data" not in doc
    assert doc["data_base64"] == "AP9iaW5hcnk="
    assert CloudEvent.from_json_dict(doc).data == b"\x00\xffbinary"


def test_missing_id_and_time_are_filled_in() -> None:
    before = datetime.now(UTC)
    event = CloudEvent.from_json_dict({"specversion": "1.0", "source": "s", "type": "t"})
    assert len(event.id) == 36
    assert event.time >= before
    other = CloudEvent.from_json_dict({"specversion": "1.0", "source": "s", "type": "t"})
    assert other.id != event.id


def test_hops_default_to_zero() -> None:
    assert CloudEvent(source="s", type="t").hops == 0


def test_time_is_normalised_to_utc_and_printed_with_z() -> None:
    event = CloudEvent.from_json_dict(minimal(time="2024-01-01T01:30:00+01:30"))
    assert event.time == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert event.to_json_dict()["time"] == "2024-01-01T00:00:00Z"
    assert parse_time("2024-01-01T00:00:00.123456789z").microsecond == 123456
    assert format_time(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"


def test_null_optional_attributes_are_absent() -> None:
    event = CloudEvent.from_json_dict(minimal(subject=None, data=None, color=None))
    assert event.subject is None and event.data is None and event.extensions == {}


@pytest.mark.parametrize(
    ("doc", "attribute"),
    [
        ({"specversion": "1.0", "source": "s"}, "'type'"),
        ({"specversion": "1.0", "type": "t"}, "'source'"),
        ({"source": "s", "type": "t"}, "'specversion'"),
        (minimal(id=""), "'id'"),
        (minimal(id=7), "'id'"),
        (minimal(source=""), "'source'"),
        (minimal(type=["a"]), "'type'"),
        (minimal(specversion="0.3"), "'specversion'"),
        (minimal(specversion=1.0), "'specversion'"),
        (minimal(subject=""), "'subject'"),
        (minimal(datacontenttype=5), "'datacontenttype'"),
        (minimal(dataschema="relative/path"), "'dataschema'"),
        (minimal(time="2024-05-01"), "'time'"),
        (minimal(time="2024-05-01T12:00:00"), "'time'"),
        (minimal(time="2024-05-01 12:00:00Z"), "'time'"),
        (minimal(time="20240501T120000Z"), "'time'"),
        (minimal(time="2024-13-01T12:00:00Z"), "'time'"),
        (minimal(time=1714564800), "'time'"),
        (minimal(Region="eu"), "'Region'"),
        (minimal(**{"my-ext": "x"}), "'my-ext'"),
        (minimal(averyveryverylongname1="x"), "'averyveryverylongname1'"),
        (minimal(ratio=0.5), "'ratio'"),
        (minimal(nested={"a": 1}), "'nested'"),
        (minimal(big=2**31), "'big'"),
        (minimal(data=1, data_base64="AA=="), "'data_base64'"),
        (minimal(data_base64="not base64!"), "'data_base64'"),
        (minimal(data_base64=5), "'data_base64'"),
    ],
)
def test_malformed_events_name_the_attribute(doc: dict[str, Any], attribute: str) -> None:
    with pytest.raises(EventError) as caught:
        CloudEvent.from_json_dict(doc)
    assert attribute in str(caught.value)


def test_an_event_must_be_an_object() -> None:
    with pytest.raises(EventError, match="JSON object, got array"):
        CloudEvent.from_json_dict([minimal()])


def test_constructor_refuses_naive_time_and_core_named_extensions() -> None:
    with pytest.raises(EventError, match="'time' must carry a UTC offset"):
        CloudEvent(source="s", type="t", time=datetime(2024, 1, 1))
    with pytest.raises(EventError, match="'subject' has the name of a core attribute"):
        CloudEvent(source="s", type="t", extensions={"subject": "x"})


def test_int_extension_bounds_are_32_bit() -> None:
    assert CloudEvent.from_json_dict(minimal(n=-(2**31))).extensions["n"] == -(2**31)
    with pytest.raises(EventError, match="'n'"):
        CloudEvent.from_json_dict(minimal(n=-(2**31) - 1))


def test_data_that_is_not_json_is_refused_when_encoded() -> None:
    with pytest.raises(EventError, match="'data'"):
        _ = CloudEvent(source="s", type="t", data={"when": datetime.now(UTC)}).encoded


def test_size_limit_names_the_size_and_the_limit() -> None:
    event = CloudEvent(id="big", source="s", type="t", data="x" * 2000)
    event.check_size(limit=event.size)
    with pytest.raises(PayloadTooLarge) as caught:
        event.check_size(limit=1000)
    message = str(caught.value)
    assert "is 2.1 KiB" in message and "limit is 1000 B" in message
    assert "'big'" in message


def test_default_limit_is_256_kib() -> None:
    CloudEvent(source="s", type="t", data="x" * (256 * 1024 - 200)).check_size()
    with pytest.raises(PayloadTooLarge, match="limit is 256 KiB"):
        CloudEvent(source="s", type="t", data="x" * (256 * 1024)).check_size()


def test_events_are_hashable_and_compare_by_value() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    a = CloudEvent(id="1", source="s", type="t", time=when, data={"a": 1})
    b = CloudEvent(id="1", source="s", type="t", time=when, data={"a": 1})
    assert a == b and hash(a) == hash(b)
    assert a != CloudEvent(id="1", source="s", type="t", time=when, data={"a": 2})
