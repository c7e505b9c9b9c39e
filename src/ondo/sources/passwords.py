"""Password hashes for the accounts sources keep (FTP users): scrypt, from the standard library.

The format is `scrypt$N$r$p$SALT$KEY`, SALT and KEY in unpadded URL-safe base64, KEY being
`hashlib.scrypt(password, salt=SALT, n=N, r=r, p=p, dklen=32)`. Make one with

    python -m ondo.sources.ftp hash          # asks for the password twice

and write it as `password_hash:` in ondo.yaml, so the password itself is in no file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

SCHEME = "scrypt"
N, R, P = 1 << 14, 8, 1  # 16 MiB of memory and ~50 ms per check: costly to guess offline
KEY_BYTES = 32
SALT_BYTES = 16
MAX_N = 1 << 20  # a hash asking for more would let a typo in ondo.yaml eat the host's memory
FORMAT = "scrypt$N$r$p$SALT$KEY"
_HASH_RE = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$")


class BadHash(ValueError):
    """Raised when a password hash is not in FORMAT."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, N, R, P)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def check_hash(text: str) -> None:
    """BadHash saying what is wrong with `text`."""
    _parse(text)


def verify_password(password: str, hashed: str) -> bool:
    n, r, p, salt, key = _parse(hashed)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(key)), key)


def _parse(text: str) -> tuple[int, int, int, bytes, bytes]:
    match = _HASH_RE.match(text)
    if match is None:
        raise BadHash(f"a password hash looks like {FORMAT}")
    n, r, p = (int(match[i]) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or n > MAX_N:
        raise BadHash(f"N must be a power of two from 2 to {MAX_N}, got {n}")
    if not (1 <= r <= 32 and 1 <= p <= 16):
        raise BadHash(f"r must be 1 to 32 and p 1 to 16, got r={r}, p={p}")
    try:
        salt, key = _unb64(match[4]), _unb64(match[5])
    except (binascii.Error, ValueError):
        raise BadHash("SALT and KEY must be URL-safe base64") from None
    if len(key) < 16:
        raise BadHash("KEY is shorter than 16 bytes")
    return n, r, p, salt, key


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = KEY_BYTES) -> bytes:
    memory = 128 * r * (n + p + 2)
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=memory + (1 << 20)
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
