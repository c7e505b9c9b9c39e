"""A stored event handed over as its JSON form is the same value as one made from its event,
decodes only when its event is asked for, and cannot be changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ondo.backends.bus.base import StoredEvent
from ondo.errors import EventError
from ondo.events import CloudEvent

EVENT = CloudEvent(
    id="e1", source="/s", type="t.happened", time=datetime(2024, 5, 1, tzinfo=UTC), data={"n": 1}
)


def test_an_event_from_its_body_equals_the_one_made_from_the_event() -> None:
    lazy = StoredEvent.from_body(7, EVENT.encoded, EVENT.type, 100.0, "team-a")
    eager = StoredEvent(7, EVENT, 100.0, "team-a")
    assert lazy.type == "t.happened" and lazy.seq == 7 and lazy.namespace == "team-a"
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    assert lazy.event == EVENT and lazy.to_json() == eager.to_json()
    assert lazy != StoredEvent(7, EVENT, 100.0, "team-b")


def test_the_body_is_decoded_only_when_the_event_is_asked_for() -> None:
    broken = StoredEvent.from_body(1, b'{"not": "an event"}', "t", 0.0, "default")
    assert broken.type == "t"  # what a dispatcher looks at first needs no decoding
    with pytest.raises(EventError, match="specversion"):
        _ = broken.event


def test_a_stored_event_cannot_be_changed() -> None:
    stored = StoredEvent(1, EVENT, 0.0)
    with pytest.raises(AttributeError, match="immutable"):
        stored.seq = 2
