"""`ondo contacts …`: the notify address book managed by hand, on a real platform."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.functional.platform import RunningPlatform


def _ok(platform: RunningPlatform, *args: str) -> str:
    done = platform.cli("contacts", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _refused(platform: RunningPlatform, *args: str) -> str:
    done = platform.cli("contacts", *args)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    return done.stderr


def test_contacts_and_groups_by_hand(platform: RunningPlatform) -> None:
    assert "no contacts" in _ok(platform, "list")
    _ok(platform, "set", "bob", "email=mailto://bob:hunter2@example.org", "mobile=ntfy://bobtopic")
    _ok(platform, "set", "carol", "email=mailto://ondo:pw@example.org?to=carol@example.org")

    listed = json.loads(_ok(platform, "list", "--json"))
    bob = next(c for c in listed["contacts"] if c["name"] == "bob")
    assert bob == {
        "name": "bob",
        "channels": {"email": "b***@example.org", "mobile": "ntfy://b***"},
        "app": None,
    }
    people = _ok(platform, "list")
    assert "c***@example.org" in people and "hunter2" not in people and "bobtopic" not in people

    _ok(platform, "group", "oncall", "bob.mobile", "carol")
    listed = json.loads(_ok(platform, "list", "--json"))
    assert listed["groups"] == [{"name": "oncall", "members": ["bob.mobile", "carol"], "app": None}]

    # a rule may name them at once: the notify directory follows the store's change feed
    rule = platform.cli("rules", "add", "--name", "page", "on alarm.raised do notify oncall")
    assert rule.returncode == 0, rule.stderr

    err = _refused(platform, "delete", "bob")
    assert "group(s) oncall" in err and "(HTTP 409)" in err
    err = _refused(platform, "set", "bob", "email=mailto://bob@example.org")
    assert "'bob.mobile'" in err and "keep channel 'mobile'" in err

    _ok(platform, "ungroup", "oncall")
    _ok(platform, "delete", "bob")
    listed = json.loads(_ok(platform, "list", "--json"))
    assert [c["name"] for c in listed["contacts"]] == ["carol"] and listed["groups"] == []
    assert "no contact 'bob'" in _refused(platform, "delete", "bob")
    assert "no group 'oncall'" in _refused(platform, "ungroup", "oncall")


def test_bad_input_is_refused_naming_it(platform: RunningPlatform) -> None:
    err = _refused(platform, "set", "bob", "email=not-a-url")
    assert "contacts.bob.email: must be an Apprise URL" in err and "(HTTP 400)" in err
    err = _refused(platform, "set", "bob", "Email=ntfy://t")
    assert "contacts.bob.Email: channel name must match" in err
    assert "give each channel as CHANNEL=URL" in _refused(platform, "set", "bob", "ntfy://t")
    assert "contact name 'Bob'" in _refused(platform, "set", "Bob", "mobile=ntfy://t")
    _ok(platform, "set", "bob", "mobile=ntfy://t")
    err = _refused(platform, "group", "team", "bob", "zed")
    assert "contact 'zed' is not declared" in err
    err = _refused(platform, "group", "team", "bob.email")
    assert "contact 'bob' has no channel 'email' (it has mobile)" in err
    err = _refused(platform, "group", "Team!", "bob")
    assert "group name 'Team!' must match" in err
    assert json.loads(_ok(platform, "list", "--json"))["groups"] == []


def test_deploy_adopts_and_owns_what_was_made_by_hand(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    _ok(platform, "set", "dave", "mobile=ntfy://one")
    app = tmp_path / "people"
    app.mkdir()
    manifest = {"name": "people", "contacts": {"dave": {"mobile": "ntfy://two"}}}
    (app / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    done = platform.cli("deploy", str(app))
    assert done.returncode == 0, done.stderr  # no owner yet: adopted without --take-over
    listed = json.loads(_ok(platform, "list", "--json"))
    assert listed["contacts"] == [
        {"name": "dave", "channels": {"mobile": "ntfy://t***"}, "app": "people"}
    ]
    err = _refused(platform, "set", "dave", "mobile=ntfy://three")
    assert "belongs to app 'people'" in err
    assert "belongs to app 'people'" in _refused(platform, "delete", "dave")
