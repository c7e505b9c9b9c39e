from __future__ import annotations

import os
import stat
from pathlib import Path

from ondo.backends.store.sqlite import SqliteDatabase
from ondo.security.tokens import Principal, TokenStore


def test_admin_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    tokens = TokenStore(SqliteDatabase(tmp_path / "ondo.db"))
    path = tmp_path / "admin.token"
    token, created = tokens.ensure_admin_token(path, now=1.0)
    assert created and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert tokens.ensure_admin_token(path, now=2.0) == (token, False)
    principal = tokens.authenticate(token)
    assert principal is not None and principal.is_admin


def test_only_hashes_are_stored_and_unknown_tokens_fail(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "ondo.db")
    tokens = TokenStore(db)
    token = tokens.issue(Principal("alice", "clinic"), now=1.0)
    assert tokens.authenticate(token) == Principal("alice", "clinic")
    assert tokens.authenticate(token + "x") is None
    stored = [r[0] for r in db.query("SELECT hash FROM tokens")]
    assert token not in stored and len(stored) == 1


def test_a_tampered_token_file_is_replaced(tmp_path: Path) -> None:
    tokens = TokenStore(SqliteDatabase(tmp_path / "ondo.db"))
    path = tmp_path / "admin.token"
    path.write_text("not-a-real-token\n")
    token, created = tokens.ensure_admin_token(path, now=1.0)
    assert created and path.read_text().strip() == token != "not-a-real-token"
