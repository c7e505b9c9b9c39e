"""Invoked by the `high-pressure` rule with the CloudEvent the mqtt source made of a reading."""


def handler(event, context):
    reading = event["data"]
    who = event.get("subject", "someone")
    print(f"high blood pressure for {who}: {reading['systolic']}/{reading['diastolic']}")
    return {"subject": who, "systolic": reading["systolic"], "diastolic": reading["diastolic"]}
