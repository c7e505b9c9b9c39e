"""EventShape makes the same events, byte for byte, as the checking constructor; stored events
read back without checks equal the ones written, and anything else is read the checking way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ondo.errors import EventError
from ondo.events import CloudEvent, EventShape, format_time

WHEN = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
ID = 'id-"ü"\\-1'  # escaped in JSON as any other text
SHAPES: list[dict[str, Any]] = [
    {"source": "fitbit", "type": "health.bp"},
    {
        "source": "fitbit",
        "type": "health.bp",
        "subject": "zoë",
        "datacontenttype": "application/json",
        "extensions": {"mqtttopic": "fitbit/zoë/bp", "room": "kitchen", "n": 7, "ok": True},
    },
]
DATA: list[Any] = [{"systolic": 150, "note": "ünïcode ☃"}, [1, 2.5, None], "text", 0, b"\x00\xff"]


@pytest.mark.parametrize("attributes", SHAPES)
@pytest.mark.parametrize("data", DATA)
def test_a_shaped_event_equals_the_checked_one_and_its_json_form(
    attributes: dict[str, Any], data: Any
) -> None:
    shaped = EventShape(**attributes).event(ID, WHEN, format_time(WHEN), data)
    checked = CloudEvent(id=ID, time=WHEN, data=data, **attributes)
    assert shaped == checked
    assert shaped.encoded == checked.encoded
    assert CloudEvent.decode(shaped.encoded) == checked


def test_a_shape_no_event_could_have_is_refused_when_made() -> None:
    with pytest.raises(EventError, match="Bad-Name"):
        EventShape(source="s", type="t", extensions={"Bad-Name": "x"})
    with pytest.raises(EventError, match="subject"):
        EventShape(source="s", type="t", subject="")


@pytest.mark.parametrize("data", [float("nan"), {"x": object()}, "\ud800"])
def test_data_that_is_not_json_is_refused(data: Any) -> None:
    with pytest.raises(EventError, match="'data' is not a JSON value"):
        EventShape(source="s", type="t").event("id-1", WHEN, format_time(WHEN), data)


def test_a_stored_form_that_is_not_one_is_read_the_checking_way() -> None:
    stored = json.loads(CloudEvent(id="id-1", source="s", type="t", time=WHEN).encoded)
    with pytest.raises(EventError, match="'source'"):
        CloudEvent.decode(json.dumps({**stored, "source": 5}))
    with pytest.raises(EventError, match="specversion"):
        CloudEvent.decode(json.dumps({**stored, "specversion": "0.3"}))
    later = CloudEvent.decode(json.dumps({**stored, "time": "2024-05-01T14:00:00+02:00"}))
    assert later.time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC) and later.time.tzinfo is UTC
