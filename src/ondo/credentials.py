"""The CLI's saved logins: one token per platform URL in `$XDG_CONFIG_HOME/ondo/credentials.json`
(default `~/.config/ondo/credentials.json`), readable by its owner only (0600, in a 0700
directory). `ondo login` writes it, `ondo logout` removes a URL, and the client uses it after
`--token` and `$ONDO_TOKEN` and before a local data dir's admin.token.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ondo.errors import ConfigError

VERSION = 1


def path() -> Path:
    """Where the credentials are kept (the XDG base directory spec's config home)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ondo" / "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def load() -> dict[str, dict[str, Any]]:
    """URL -> {token, name, namespace, …}; empty when nothing was saved. A file that cannot be
    read is an error naming it and the fix."""
    where = path()
    try:
        raw = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror}; fix its permissions") from None
    try:
        doc = json.loads(raw)
        logins = doc["logins"]
        if not isinstance(logins, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{where} is not a credentials file ondo wrote; remove it and run `ondo login` again"
        ) from None
    return {str(url): dict(entry) for url, entry in logins.items() if isinstance(entry, dict)}


def token_for(url: str) -> str | None:
    entry = load().get(_key(url))
    token = entry.get("token") if entry else None
    return token if isinstance(token, str) and token else None


def save(url: str, entry: dict[str, Any]) -> Path:
    """Keep `entry` (with its token) for `url`, replacing an earlier login there."""
    logins = load()
    logins[_key(url)] = entry
    return _write(logins)


def forget(url: str) -> bool:
    """Drop the login of `url`; whether there was one."""
    logins = load()
    if logins.pop(_key(url), None) is None:
        return False
    _write(logins)
    return True


def _write(logins: dict[str, dict[str, Any]]) -> Path:
    where = path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole under a temporary name (0600 from its creation), then renamed: a crash
    # leaves the old file or the new one, and no other user ever sees the tokens.
    fd, temporary = tempfile.mkstemp(prefix=".credentials-", dir=where.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"version": VERSION, "logins": logins}, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, where)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return where
