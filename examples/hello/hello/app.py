"""A Lambda-style handler: it runs unchanged on AWS Lambda and on ondo."""

import os


def handler(event, context):
    name = (event or {}).get("name", "world")
    print(f"greeting {name} (request {context.aws_request_id})")
    return {
        "message": f"{os.environ.get('GREETING', 'Hello')}, {name}!",
        "function": context.function_name,
        "version": context.function_version,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
