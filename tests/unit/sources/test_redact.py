from __future__ import annotations

from ondo.sources.redact import MASK, redacted


def test_secrets_are_masked_in_values_and_urls() -> None:
    settings = {
        "url": "mqtt://dev:hunter2@broker:1883",
        "users": {"alice": {"password": "s3cret"}, "bob": {"password_hash": "scrypt$x"}},
        "hmac": {"secret": "k", "header": "X-Sig"},
        "port": 2121,
        "smarthost": {"host": "mail", "username": "u", "password": ""},
        "topics": [{"topic": "a/{subject}"}],
    }
    assert redacted(settings) == {
        "url": f"mqtt://dev:{MASK}@broker:1883",
        "users": {"alice": {"password": MASK}, "bob": {"password_hash": MASK}},
        "hmac": {"secret": MASK, "header": "X-Sig"},
        "port": 2121,
        "smarthost": {"host": "mail", "username": "u", "password": ""},
        "topics": [{"topic": "a/{subject}"}],
    }
