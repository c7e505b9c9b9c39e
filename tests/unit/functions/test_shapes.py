"""Event shapes for handlers written for Lambda's S3 and EventBridge triggers: every field."""

from __future__ import annotations

from typing import Any

import pytest

from ondo.errors import ValidationError
from ondo.functions.shapes import shaped, to_eventbridge, to_s3

CREATED: dict[str, Any] = {
    "specversion": "1.0",
    "id": "obj-0123456789abcdef0123456789abcdef",
    "source": "uploads",
    "type": "object.created",
    "subject": "alice/reports/red flower+q1.csv",
    "time": "2026-12-03T16:05:07.123456+01:00",
    "data": {
        "bucket": "uploads",
        "key": "alice/reports/red flower+q1.csv",
        "size": 27,
        "etag": "9e107d9d372bb6826bd81d3542a419d6",
        "content_type": "text/csv",
        "sequencer": "187D6A6B2C0E1F00",
        "uploader": "alice",
        "path": "/srv/ondo/sources/default/uploads/homes/alice/reports/red flower+q1.csv",
    },
}


def test_an_object_created_event_is_an_s3_put_notification() -> None:
    assert to_s3(CREATED) == {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "local",
                "eventTime": "2026-12-03T15:05:07.123Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "alice"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "obj-0123456789abcdef0123456789ab",
                    "x-amz-id-2": "obj-0123456789abcdef0123456789abcdef",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "uploads",
                    "bucket": {
                        "name": "uploads",
                        "ownerIdentity": {"principalId": "ondo"},
                        "arn": "arn:aws:s3:::uploads",
                    },
                    "object": {
                        "key": "alice/reports/red+flower%2Bq1.csv",
                        "size": 27,
                        "eTag": "9e107d9d372bb6826bd81d3542a419d6",
                        "sequencer": "187D6A6B2C0E1F00",
                    },
                },
            }
        ]
    }


def test_an_object_deleted_event_is_an_s3_delete_notification_without_size() -> None:
    deleted = {
        **CREATED,
        "type": "object.deleted",
        "time": "2026-12-03T15:05:07Z",
        "data": {"bucket": "drop", "key": "a.csv", "sequencer": "187D6A6B2C0E1F01"},
    }
    [record] = to_s3(deleted)["Records"]
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert record["eventTime"] == "2026-12-03T15:05:07.000Z"
    assert record["userIdentity"] == {"principalId": "ondo"}
    assert record["s3"]["bucket"]["name"] == "drop"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::drop"
    assert record["s3"]["object"] == {"key": "a.csv", "sequencer": "187D6A6B2C0E1F01"}


@pytest.mark.parametrize(
    "event",
    [
        {**CREATED, "type": "order.placed"},
        {**CREATED, "data": {"bucket": "b"}},
        {**CREATED, "data": "text"},
    ],
)
def test_an_event_without_an_object_has_no_s3_shape(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="function 'ingest' takes S3 events"):
        shaped(event, "s3", "ingest")


def test_any_event_is_an_eventbridge_envelope() -> None:
    assert to_eventbridge(CREATED) == {
        "version": "0",
        "id": "obj-0123456789abcdef0123456789abcdef",
        "detail-type": "object.created",
        "source": "uploads",
        "account": "000000000000",
        "time": "2026-12-03T15:05:07Z",
        "region": "local",
        "resources": [],
        "detail": CREATED["data"],
    }
    bare = {"id": "e1", "source": "tests", "type": "ping", "time": "2026-01-01T00:00:00Z"}
    assert to_eventbridge(bare)["detail"] == {}


def test_cloudevent_is_the_event_as_it_is() -> None:
    assert shaped(CREATED, "cloudevent") is CREATED
    assert shaped(CREATED, "eventbridge")["detail-type"] == "object.created"
