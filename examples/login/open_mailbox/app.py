"""Invoked by `open-mailbox-on-login` with the `auth.login` event the `idp` webhook made."""

import os
import re

USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def handler(event, context):
    login = event["data"]["body"]
    user = str(login["user"]).lower()
    if not USER.fullmatch(user):
        raise ValueError(f"cannot open a mailbox for user {login['user']!r}")
    mailbox = f"{user}@{os.environ['MAIL_DOMAIN']}"
    # Provisioning: a real deployment would call its mail server's admin API here; the answer
    # (the invocation record, `ondo logs open-mailbox`) says what was opened and why.
    print(f"opening mailbox {mailbox} for {user}, who signed in")
    return {
        "mailbox": mailbox,
        "user": user,
        "folders": ["INBOX", "Sent", "Drafts", "Trash"],
        "login_event": event["id"],
    }
