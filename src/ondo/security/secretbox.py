"""Encrypting secrets at rest: AES-256-GCM with the secret's namespace and name as associated
data, so a ciphertext copied onto another secret's row does not decrypt.

A ciphertext is `VERSION (1 byte) | nonce (12 bytes) | AES-GCM output (value + 16-byte tag)`.
The key is 32 random bytes, written as URL-safe base64: `ONDO_SECRETS_KEY` when given (a
comma-separated list while rotating: the first encrypts, every one is tried to decrypt),
otherwise, for the embedded store only, `<data-dir>/secrets.key` (0600, made on first use).
A store shared by several processes needs the same key on every node, so none is made up.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ondo.errors import ConfigError, SecretsKeyMissing, SecretUnreadable

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_FILE = "secrets.key"
KEY_VARIABLE = "ONDO_SECRETS_KEY"
MAKE_KEY = (
    'python3 -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)


def new_key_text() -> str:
    """A fresh key as it is written to secrets.key or ONDO_SECRETS_KEY."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_keys(text: str, where: str) -> list[bytes]:
    """The keys of `text` (comma-separated, the encrypting one first), each 32 bytes."""
    keys = [_one_key(item.strip(), where) for item in text.split(",") if item.strip()]
    if not keys:
        raise ConfigError(f"{where} holds no key; make one with: {MAKE_KEY}")
    return keys


def _one_key(item: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(item.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    # The canonical form only (Python's decoder skips what follows the padding).
    if len(key) != KEY_BYTES or base64.urlsafe_b64encode(key).decode() != item:
        raise ConfigError(
            f"{where}: a secrets key is 32 bytes in URL-safe base64 (44 characters);"
            f" make one with: {MAKE_KEY}"
        )
    return key


def load_keys(configured: str, data_dir: Path, shared: bool) -> list[bytes]:
    """The configured keys; else, for a store this process alone uses, the data dir's key file
    (made on first use); else SecretsKeyMissing, naming the fix."""
    if configured.strip():
        return parse_keys(configured, KEY_VARIABLE)
    if shared:
        raise SecretsKeyMissing(
            "secrets need a key that every ondo process sharing this store holds: set "
            f"{KEY_VARIABLE} to the same value on each node (make one with: {MAKE_KEY}) "
            "and restart"
        )
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_keys(path.read_text(encoding="ascii", errors="replace"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new_key_text() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return parse_keys(path.read_text(encoding="ascii"), str(path))


def associated_data(namespace: str, name: str) -> bytes:
    """What binds a ciphertext to its row (namespace and name cannot hold NUL)."""
    return b"ondo-secret\x00" + namespace.encode() + b"\x00" + name.encode()


class SecretBox:
    """Encrypts with the first key; decrypts with whichever key fits."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._ciphers = [AESGCM(key) for key in keys]

    def seal(self, namespace: str, name: str, value: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[0].encrypt(nonce, value, associated_data(namespace, name))
        return VERSION + nonce + sealed

    def open(self, namespace: str, name: str, ciphertext: bytes) -> bytes:
        if ciphertext[:1] != VERSION or len(ciphertext) < 1 + NONCE_BYTES + 16:
            raise _unreadable(namespace, name, "it is not in a format this version knows")
        nonce, sealed = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
        ad = associated_data(namespace, name)
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, sealed, ad)
            except InvalidTag:
                continue
        raise _unreadable(namespace, name, "no configured key decrypts it")


def _unreadable(namespace: str, name: str, why: str) -> SecretUnreadable:
    return SecretUnreadable(
        f"secret {name!r} in namespace {namespace!r} cannot be decrypted: {why} (another "
        f"{KEY_VARIABLE} or {KEY_FILE} than the one it was set with, or an altered row); "
        f"restore the key it was set with, or set it again: ondo secrets set {name}"
    )
