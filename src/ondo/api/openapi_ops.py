"""What each API operation takes and answers, for the OpenAPI document (see api/openapi.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ondo.api.http import MAX_STORED_INT
from ondo.api.routes.clock import MAX_ADVANCE_S as CENTURY

Schema = dict[str, Any]

ANY: Schema = {}
TEXT: Schema = {"type": "string"}
NAME: Schema = {"type": "string", "minLength": 1}
INT: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
ID: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_STORED_INT}
OBJECT: Schema = {"type": "object"}
FLAG: Schema = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these properties (more are allowed in answers)."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A request body object: only these properties."""
    return {**obj(required, optional), "additionalProperties": False}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def limit(default: int, high: int = 1000) -> Schema:
    return {"type": "integer", "minimum": 1, "maximum": high, "default": default}


def json_body(schema: Schema) -> dict[str, Schema]:
    return {"application/json": {"schema": schema}}


@dataclass(frozen=True)
class Operation:
    """One operation: success answers by status, query parameters, body, extra error statuses."""

    answers: dict[int, Schema]
    query: dict[str, Schema] = field(default_factory=dict)
    body: dict[str, Schema] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"


FUNCTION = obj({"name": TEXT, "namespace": TEXT, "version": INT})
INVOCATION = obj({"id": TEXT, "namespace": TEXT, "function": TEXT, "version": INT, "status": TEXT})
STORED_EVENT = obj({"seq": INT, "received_at": NUMBER, "namespace": TEXT, "event": OBJECT})
RULE = obj(
    {"name": TEXT, "namespace": TEXT, "enabled": {"type": "boolean"}},
    {"disabled_reason": {"type": ["string", "null"]}},  # why ondo disabled it (it failed)
)
SOURCE_FIELDS: dict[str, Schema] = {
    "name": TEXT,
    "namespace": TEXT,
    "kind": TEXT,
    "state": {"type": "string", "enum": ["starting", "connected", "retrying", "stopped", "failed"]},
    "events": INT,
    "errors": INT,
}
SOURCE = obj(SOURCE_FIELDS, {"last_error": {"type": ["string", "null"]}})
NULLABLE_TEXT: Schema = {"type": ["string", "null"]}
CONTACT = obj({"name": TEXT, "channels": OBJECT, "app": NULLABLE_TEXT})
GROUP = obj({"name": TEXT, "members": array(TEXT), "app": NULLABLE_TEXT})
JOB = obj({"id": INT, "status": TEXT})
AUDIT_ENTRY = obj(
    {
        "seq": INT,
        "at": NUMBER,
        "namespace": TEXT,
        "principal": TEXT,
        "action": TEXT,
        "resource": TEXT,
        "outcome": {"type": "string", "enum": ["ok", "denied", "failed"]},
        "about": TEXT,
        "detail": OBJECT,
        "prev_hash": TEXT,
        "hash": TEXT,
    }
)
AUDIT_HEAD = obj({"seq": INT, "hash": TEXT})
SECRET = obj(
    {
        "name": TEXT,
        "namespace": TEXT,
        "created_at": NUMBER,
        "updated_at": NUMBER,
        "created_by": TEXT,
    }
)
SECRET_SET = obj({"name": TEXT, "namespace": TEXT, "created": {"type": "boolean"}})
SECRET_BODY: dict[str, Schema] = {  # the value itself, UTF-8, up to 64 KiB
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "text/plain": {"schema": {"type": "string", "minLength": 1}},
}
INVOCATIONS = obj({"invocations": array(INVOCATION)})
CLOUDEVENT = obj(
    {"specversion": {"const": "1.0"}, "id": NAME, "source": NAME, "type": NAME},
    {"time": TEXT, "subject": TEXT, "datacontenttype": TEXT, "data": ANY},
)
EVENTS_BODY = {
    "application/cloudevents+json": {"schema": CLOUDEVENT},
    "application/cloudevents-batch+json": {"schema": {**array(CLOUDEVENT), "minItems": 1}},
    "application/json": {"schema": {"oneOf": [CLOUDEVENT, {**array(CLOUDEVENT), "minItems": 1}]}},
}
RULE_BODY = closed(
    {},
    {
        "name": TEXT,
        "text": TEXT,
        "enabled": {"type": "boolean"},
        "pattern": ANY,
        "condition": ANY,
        "window": ANY,
        "throttle": ANY,
        "actions": ANY,
    },
)
LINES = array(TEXT)
CLOCK = obj({"now": NUMBER, "manual": {"type": "boolean"}})
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
ISSUED_FIELDS: dict[str, Schema] = {
    "token": TEXT,
    "id": TEXT,
    "principal": TEXT,
    "namespace": TEXT,
    "role": TEXT,
    "expires_at": NULLABLE_NUMBER,
}
ISSUED = obj(ISSUED_FIELDS)
TOKEN = obj(
    {
        "id": TEXT,
        "principal": TEXT,
        "namespace": TEXT,
        "label": TEXT,
        "expires_at": NULLABLE_NUMBER,
        "revoked_at": NULLABLE_NUMBER,
        "state": TEXT,
    }
)
USER = obj({"name": TEXT, "namespace": TEXT, "role": TEXT, "kind": TEXT})
POLICY = obj(
    {"id": TEXT, "namespace": TEXT, "principal": TEXT, "permission": TEXT, "resource": TEXT}
)
IDENTITY_FIELDS: dict[str, Schema] = {
    "name": TEXT,
    "namespace": TEXT,
    "role": TEXT,
    "kind": TEXT,
    "token_id": TEXT,
    "expires_at": NULLABLE_NUMBER,
}
IDENTITY = obj(IDENTITY_FIELDS)
ARCHIVE: Schema = {"type": "string", "format": "binary"}
DEPLOY_BODY = {
    "application/gzip": {"schema": ARCHIVE},
    "application/octet-stream": {"schema": ARCHIVE},
}
INVOKE_QUERY: dict[str, Schema] = {
    "mode": {"type": "string", "enum": ["sync", "async"]},
    "version": {"type": "string", "pattern": r"^([0-9]{1,18}|\$LATEST|current)$"},
}
GRANT_FIELDS: dict[str, Schema] = {
    "id": TEXT,
    "subject": TEXT,
    "to": TEXT,
    "types": array(TEXT),
    "purpose": TEXT,
    "created_at": NUMBER,
}
GRANT: Schema = obj(GRANT_FIELDS)


OPERATIONS: dict[tuple[str, str], Operation] = {
    # --- system -------------------------------------------------------------------------------
    ("GET", "/healthz"): Operation({200: obj({"status": TEXT, "version": TEXT})}),
    ("GET", "/metrics"): Operation({200: TEXT}, media_type="text/plain"),
    ("GET", "/openapi.json"): Operation(
        {200: obj({"openapi": TEXT, "paths": OBJECT})}, errors=(429,)
    ),
    ("GET", "/v1/status"): Operation({200: obj({"version": TEXT, "runtime": OBJECT})}),
    # --- identities -------------------------------------------------------------------------
    ("POST", "/v1/tokens"): Operation(
        {201: ISSUED},
        body=json_body(
            closed(
                {},
                {"principal": TEXT, "namespace": TEXT, "expires_in": TEXT, "label": TEXT},
            )
        ),
        body_required=False,
        errors=(413,),
    ),
    # --- consent grants -----------------------------------------------------------------------
    ("GET", "/v1/grants"): Operation({200: obj({"grants": array(GRANT)})}),
    ("POST", "/v1/grants"): Operation(
        {201: GRANT},
        body=json_body(
            closed(
                {"to": NAME, "types": {**array(NAME), "minItems": 1}},
                {
                    "expires": {"oneOf": [TEXT, NUMBER]},
                    "purpose": TEXT,
                    "fields": array(NAME),
                },
            )
        ),
        errors=(413,),
    ),
    ("DELETE", "/v1/grants/{id}"): Operation(
        {200: obj({**GRANT_FIELDS, "disabled_rules": array(OBJECT)})}
    ),
    ("GET", "/v1/tokens"): Operation({200: obj({"tokens": array(TOKEN)})}),
    ("DELETE", "/v1/tokens/{id}"): Operation({200: TOKEN}),
    ("POST", "/v1/users"): Operation(
        {201: obj({"user": USER, **ISSUED_FIELDS})},
        body=json_body(closed({"name": NAME}, {"role": TEXT, "kind": TEXT, "namespace": TEXT})),
        errors=(409, 413),
    ),
    ("GET", "/v1/users"): Operation({200: obj({"users": array(USER)})}),
    ("PATCH", "/v1/users/{name}"): Operation(
        {200: obj({"user": USER})}, body=json_body(closed({"role": TEXT}, {})), errors=(413,)
    ),
    ("DELETE", "/v1/users/{name}"): Operation({200: obj({"deleted": TEXT, "tokens_revoked": INT})}),
    ("POST", "/v1/policies"): Operation(
        {201: POLICY},
        body=json_body(
            closed({"principal": NAME, "permission": NAME}, {"resource": TEXT, "namespace": TEXT})
        ),
        errors=(413,),
    ),
    ("GET", "/v1/policies"): Operation({200: obj({"policies": array(POLICY)})}),
    ("DELETE", "/v1/policies/{id}"): Operation({200: obj({"deleted": TEXT})}),
    ("GET", "/v1/whoami"): Operation({200: IDENTITY}),
    ("POST", "/v1/login"): Operation(
        {200: obj({**IDENTITY_FIELDS, "event_id": TEXT})},
        body=json_body(closed({})),
        body_required=False,
        errors=(413,),
    ),
    # --- functions ----------------------------------------------------------------------------
    ("POST", "/v1/functions/{name}/invoke"): Operation(
        {200: ANY, 202: obj({"id": TEXT, "status": TEXT})},
        query=INVOKE_QUERY,
        body=json_body(ANY),
        body_required=False,
        errors=(413, 429, 503),
    ),
    ("GET", "/v1/functions"): Operation({200: obj({"functions": array(FUNCTION)})}),
    ("GET", "/v1/functions/{name}"): Operation({200: FUNCTION}),
    ("DELETE", "/v1/functions/{name}"): Operation(
        {200: obj({"deleted": TEXT, "disabled_rules": array(TEXT)})},
        query={"force": FLAG},
        errors=(409,),
    ),
    ("GET", "/v1/functions/{name}/versions"): Operation(
        {200: obj({"current": INT, "versions": array(FUNCTION)})}
    ),
    ("POST", "/v1/functions/{name}/rollback"): Operation(
        {200: obj({"name": TEXT, "current": INT})},
        body=json_body(closed({"version": {**ID, "minimum": 1}})),
        errors=(409, 413),
    ),
    ("GET", "/v1/functions/{name}/invocations"): Operation(
        {200: INVOCATIONS}, query={"limit": limit(20)}
    ),
    ("GET", "/v1/functions/{name}/logs"): Operation(
        {200: INVOCATIONS}, query={"after": NUMBER, "limit": limit(100)}
    ),
    ("GET", "/v1/invocations/{id}"): Operation({200: INVOCATION}, errors=(410,)),
    # --- events -------------------------------------------------------------------------------
    ("POST", "/v1/events"): Operation(
        {202: obj({"ids": array(TEXT), "seqs": array(ANY), "duplicates": array(TEXT)})},
        body=EVENTS_BODY,
        errors=(413, 415, 503),
    ),
    ("GET", "/v1/events"): Operation(
        {200: obj({"events": array(STORED_EVENT), "next": INT})},
        query={
            "type": TEXT,
            "limit": limit(100),
            "after": {"type": "integer", "minimum": 0},
            "wait": {"type": "integer", "minimum": 0, "maximum": 60},
        },
    ),
    ("POST", "/v1/events/replay"): Operation(
        {200: obj({"since": TEXT, "events": array(OBJECT), "dispatched": INT})},
        body=json_body(closed({"since": TEXT}, {"rule": NAME, "type": NAME})),
        errors=(413,),
    ),
    ("GET", "/v1/events/{id}"): Operation(
        {200: STORED_EVENT}, query={"source": TEXT}, errors=(410,)
    ),
    # --- deployments --------------------------------------------------------------------------
    ("POST", "/v1/deployments"): Operation(
        {200: obj({"app": TEXT, "namespace": TEXT, "steps": array(OBJECT)})},
        query={"dry_run": FLAG, "app": NAME, "take_over": FLAG, "force": FLAG},
        body=DEPLOY_BODY,
        errors=(409, 413),
    ),
    # --- actions and the dead-letter queue ----------------------------------------------------
    ("GET", "/v1/actions"): Operation({200: obj({"jobs": {"additionalProperties": INT}})}),
    ("GET", "/v1/dlq"): Operation(
        {200: obj({"dead_letters": array(JOB)})},
        query={"limit": limit(100), "after": {"type": "integer", "minimum": 0}},
    ),
    ("POST", "/v1/dlq/retry"): Operation(
        {200: obj({"retried": array(INT)}, {"skipped_not_dead": array(INT)})},
        body=json_body(closed({}, {"ids": array(ID)})),
        body_required=False,
        errors=(413,),
    ),
    ("GET", "/v1/dlq/{id}"): Operation({200: JOB}),
    ("DELETE", "/v1/dlq/{id}"): Operation({200: obj({"deleted": INT})}, errors=(409,)),
    ("POST", "/v1/dlq/{id}/retry"): Operation({200: obj({"retried": array(INT)})}, errors=(409,)),
    # --- rules, trace and the manual clock ----------------------------------------------------
    ("GET", "/v1/rules"): Operation({200: obj({"rules": array(RULE)})}),
    ("POST", "/v1/rules"): Operation(
        {201: RULE},
        query={"replace": FLAG, "take_over": FLAG},
        body=json_body(RULE_BODY),
        errors=(409, 413),
    ),
    ("POST", "/v1/rules/test"): Operation(
        {200: OBJECT}, body=json_body(closed({"event": OBJECT}, {"rule": NAME})), errors=(413,)
    ),
    ("GET", "/v1/rules/{name}"): Operation({200: RULE}),
    ("DELETE", "/v1/rules/{name}"): Operation({200: obj({"deleted": TEXT})}),
    ("POST", "/v1/rules/{name}/enable"): Operation({200: RULE}),
    ("POST", "/v1/rules/{name}/disable"): Operation({200: RULE}),
    ("GET", "/v1/rules/{name}/enforcements"): Operation(
        {200: obj({"enforcements": array(OBJECT)})}, query={"limit": limit(50)}
    ),
    ("GET", "/v1/sources"): Operation({200: obj({"sources": array(SOURCE)})}),
    ("GET", "/v1/sources/{name}"): Operation({200: obj({**SOURCE_FIELDS, "settings": OBJECT})}),
    ("GET", "/v1/contacts"): Operation(
        {200: obj({"contacts": array(CONTACT), "groups": array(GROUP)})}
    ),
    ("PUT", "/v1/contacts/{name}"): Operation(
        {200: CONTACT, 201: CONTACT},
        body=json_body(closed({"channels": {"type": "object", "minProperties": 1}})),
        errors=(409, 413),
    ),
    ("DELETE", "/v1/contacts/{name}"): Operation({200: obj({"deleted": TEXT})}, errors=(409,)),
    ("PUT", "/v1/groups/{name}"): Operation(
        {200: GROUP, 201: GROUP},
        body=json_body(closed({"members": {**array(NAME), "minItems": 1}})),
        errors=(409, 413),
    ),
    ("DELETE", "/v1/groups/{name}"): Operation({200: obj({"deleted": TEXT})}, errors=(409,)),
    # --- secrets: no operation answers a value -----------------------------------------------
    ("GET", "/v1/secrets"): Operation({200: obj({"secrets": array(SECRET)})}),
    ("PUT", "/v1/secrets/{name}"): Operation(
        {200: SECRET_SET, 201: SECRET_SET}, body=SECRET_BODY, errors=(413,)
    ),
    ("DELETE", "/v1/secrets/{name}"): Operation({200: obj({"deleted": TEXT})}),
    ("GET", "/v1/trace/{event_id}"): Operation(
        {200: obj({"events": array(STORED_EVENT), "decisions": array(OBJECT), "lines": LINES})},
        errors=(410,),
    ),
    # --- audit --------------------------------------------------------------------------------
    ("GET", "/v1/audit"): Operation(
        {
            200: obj(
                {
                    "caller": TEXT,
                    "entries": array(AUDIT_ENTRY),
                    "next_after": {"type": ["integer", "null"]},
                },
                {"decisions": array(OBJECT)},
            )
        },
        query={
            "about": TEXT,
            "principal": TEXT,
            "after": {"type": "integer", "minimum": 0},
            "limit": limit(100),
        },
    ),
    ("GET", "/v1/audit/verify"): Operation(
        {
            200: obj(
                {"ok": {"type": "boolean"}, "checked": INT, "head": AUDIT_HEAD, "problem": TEXT},
                {"broken_seq": {"type": ["integer", "null"]}, "anchors": array(TEXT)},
            )
        },
        query={"expect": {"type": "string", "pattern": "^[0-9]{1,18}:[0-9a-fA-F]{64}$"}},
    ),
    ("GET", "/v1/clock"): Operation({200: CLOCK}),
    ("POST", "/v1/clock/advance"): Operation(
        {200: obj({"now": NUMBER, "before": OBJECT, "after": OBJECT})},
        body=json_body(closed({"seconds": {"type": "number", "minimum": 0, "maximum": CENTURY}})),
        errors=(409, 413),
    ),
}
