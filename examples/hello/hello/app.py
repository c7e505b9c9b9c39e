"""A Lambda-style handler: it runs unchanged on AWS Lambda and on ondo.

Invoked directly, `event` is the JSON you send; invoked by a rule, it is the CloudEvent,
with the payload under "data".
"""

import os


def handler(event, context):
    event = event or {}
    payload = event.get("data") if isinstance(event.get("data"), dict) else event
    name = payload.get("name", "world")
    print(f"greeting {name} (request {context.aws_request_id})")
    return {
        "message": f"{os.environ.get('GREETING', 'Hello')}, {name}!",
        "function": context.function_name,
        "version": context.function_version,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
