"""Encryption of secrets at rest: AES-GCM bound to namespace and name, and where the key lives."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ondo.errors import ConfigError, SecretsKeyMissing, SecretUnreadable
from ondo.security.secretbox import (
    KEY_FILE,
    SecretBox,
    load_keys,
    new_key_text,
    parse_keys,
)


def box() -> SecretBox:
    return SecretBox(parse_keys(new_key_text(), "test"))


def test_a_value_comes_back_and_is_not_in_its_ciphertext() -> None:
    sealer = box()
    sealed = sealer.seal("clinic", "DB_PASSWORD", b"hunter2-and-more")
    assert b"hunter2" not in sealed
    assert sealer.open("clinic", "DB_PASSWORD", sealed) == b"hunter2-and-more"
    # a fresh nonce each time: the same value never gives the same ciphertext
    assert sealer.seal("clinic", "DB_PASSWORD", b"hunter2-and-more") != sealed


def test_another_key_cannot_open_it() -> None:
    sealed = box().seal("default", "TOKEN", b"value")
    with pytest.raises(SecretUnreadable, match="no configured key decrypts it") as refused:
        box().open("default", "TOKEN", sealed)
    assert "ondo secrets set TOKEN" in str(refused.value)
    assert "value" not in str(refused.value).replace("'", " ").split()


@pytest.mark.parametrize("index", [0, 5, 13, -1])
def test_a_tampered_ciphertext_is_refused(index: int) -> None:
    sealer = box()
    sealed = bytearray(sealer.seal("default", "TOKEN", b"value"))
    sealed[index] ^= 0x01
    with pytest.raises(SecretUnreadable):
        sealer.open("default", "TOKEN", bytes(sealed))


def test_a_ciphertext_moved_to_another_name_or_namespace_does_not_open() -> None:
    sealer = box()
    sealed = sealer.seal("default", "DB_PASSWORD", b"value")
    for namespace, name in (("default", "OTHER"), ("clinic", "DB_PASSWORD"), ("defaul", "tDB")):
        with pytest.raises(SecretUnreadable):
            sealer.open(namespace, name, sealed)


def test_a_truncated_or_foreign_ciphertext_is_refused() -> None:
    with pytest.raises(SecretUnreadable, match="format"):
        box().open("default", "TOKEN", b"\x01short")
    with pytest.raises(SecretUnreadable, match="format"):
        box().open("default", "TOKEN", b"\x02" + bytes(40))


def test_rotation_decrypts_with_the_old_key_and_encrypts_with_the_new() -> None:
    old, new = new_key_text(), new_key_text()
    sealed_old = SecretBox(parse_keys(old, "k")).seal("default", "TOKEN", b"v1")
    both = SecretBox(parse_keys(f"{new}, {old}", "k"))
    assert both.open("default", "TOKEN", sealed_old) == b"v1"
    sealed_new = both.seal("default", "TOKEN", b"v2")
    assert SecretBox(parse_keys(new, "k")).open("default", "TOKEN", sealed_new) == b"v2"
    with pytest.raises(SecretUnreadable):
        SecretBox(parse_keys(old, "k")).open("default", "TOKEN", sealed_new)


def test_the_embedded_key_file_is_made_once_owner_only(tmp_path: Path) -> None:
    first = load_keys("", tmp_path, shared=False)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys("", tmp_path, shared=False) == first
    sealed = SecretBox(first).seal("default", "TOKEN", b"v")
    assert SecretBox(load_keys("", tmp_path, shared=False)).open("default", "TOKEN", sealed) == b"v"


def test_a_configured_key_wins_over_the_file(tmp_path: Path) -> None:
    key = new_key_text()
    assert load_keys(key, tmp_path, shared=False) == parse_keys(key, "k")
    assert not (tmp_path / KEY_FILE).exists()


def test_a_shared_store_without_a_key_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SecretsKeyMissing, match="ONDO_SECRETS_KEY") as refused:
        load_keys("", tmp_path, shared=True)
    assert "urandom(32)" in str(refused.value)
    assert not (tmp_path / KEY_FILE).exists()  # none is made up for a shared store
    key = new_key_text()
    assert load_keys(key, tmp_path, shared=True) == parse_keys(key, "k")


@pytest.mark.parametrize("text", ["", " , ", "not-base64!", "c2hvcnQ=", new_key_text() + "AA"])
def test_a_malformed_key_is_refused_with_how_to_make_one(text: str) -> None:
    with pytest.raises(ConfigError, match="urandom"):
        parse_keys(text, "ONDO_SECRETS_KEY")
