"""The event shape a function's handler receives from a rule: `event:` in ondo.yaml.

- `cloudevent` (the default): the event's structured CloudEvents JSON form, as the bus holds it.
- `s3`: an S3 event notification (`{"Records": [...]}`, one record), as Lambda's S3 trigger
  delivers it, for `object.created` / `object.deleted` events (the ftp and bucket sources).
  The object key is URL-encoded as S3 encodes it (`red flower.jpg` → `red+flower.jpg`), so a
  handler's `urllib.parse.unquote_plus(record["s3"]["object"]["key"])` works unchanged.
- `eventbridge`: the EventBridge envelope (`version`, `id`, `detail-type`, `source`, `account`,
  `time`, `region`, `resources`, `detail`), for any event: `detail-type` is the event's type,
  `detail` its data.

Converted only for rule invocations (`do invoke f`); a rule's `with JSON` document is passed
as written. The region is `local` (as AWS_REGION in the sandbox) and the account twelve zeros.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote_plus

from ondo.errors import ValidationError

Shape = Literal["cloudevent", "s3", "eventbridge"]
SHAPES: tuple[Shape, ...] = ("cloudevent", "s3", "eventbridge")
REGION = "local"
ACCOUNT = "000000000000"
S3_EVENT_NAMES = {"object.created": "ObjectCreated:Put", "object.deleted": "ObjectRemoved:Delete"}


def shaped(event: dict[str, Any], shape: str, function: str = "") -> Any:
    """`event` (structured CloudEvents JSON) in the shape a function declared."""
    if shape == "s3":
        return to_s3(event, function)
    if shape == "eventbridge":
        return to_eventbridge(event)
    return event


def to_s3(event: dict[str, Any], function: str = "") -> dict[str, Any]:
    name = S3_EVENT_NAMES.get(str(event.get("type")))
    data = event.get("data")
    if name is None or not isinstance(data, dict) or "key" not in data:
        raise ValidationError(
            f"function {function!r} takes S3 events (event: s3), but this is a"
            f" {event.get('type')!r} event from {event.get('source')!r}; only object.created and"
            " object.deleted (ftp and bucket sources) have that shape: use event: cloudevent or"
            " eventbridge for it"
        )
    bucket = str(data.get("bucket") or event.get("source"))
    obj: dict[str, Any] = {"key": quote_plus(str(data["key"]), safe="/")}
    if name.startswith("ObjectCreated"):
        obj.update({"size": data.get("size", 0), "eTag": data.get("etag", "")})
    obj["sequencer"] = data.get("sequencer", "")
    principal = str(data.get("uploader") or "ondo")
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": _time(event, milliseconds=True),
        "eventName": name,
        "userIdentity": {"principalId": principal},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": str(event.get("id", ""))[:32],
            "x-amz-id-2": str(event.get("id", "")),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": str(event.get("source", "")),
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "ondo"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def to_eventbridge(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return {
        "version": "0",
        "id": str(event.get("id", "")),
        "detail-type": str(event.get("type", "")),
        "source": str(event.get("source", "")),
        "account": ACCOUNT,
        "time": _time(event, milliseconds=False),
        "region": REGION,
        "resources": [],
        "detail": {} if data is None else data,
    }


def _time(event: dict[str, Any], *, milliseconds: bool) -> str:
    """The event's time in UTC as AWS writes it: 2026-12-03T15:55:23.000Z (S3) or
    2026-12-03T15:55:23Z (EventBridge)."""
    raw = event.get("time")
    try:
        when = datetime.fromisoformat(str(raw)).astimezone(UTC)
    except ValueError:
        when = datetime.now(UTC)
    if milliseconds:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
