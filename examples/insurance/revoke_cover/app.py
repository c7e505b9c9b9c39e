"""Invoked by the `too-many-claims` rule with the tenth claim about one person in 30 days."""


def handler(event, context):
    claim = event["data"]
    person = event["subject"]  # the route's `subject: "{person}"`
    print(f"revoking the cover of {person}: ten claims within 30 days")
    # A real insurer would call its policy system here; the result is the invocation record.
    return {"revoked": person, "last_claim": event["id"], "claim": claim.get("body")}
