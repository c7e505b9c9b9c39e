"""Secrets: set, listed (never their values) and deleted through the API; decrypted only to go
into the environment of the functions that declare them (functions/service.py).

A value is cached decrypted in each process until the change feed says it changed; a change
also reaches the functions that declare it (their zygotes restart with the new environment):
listeners added with `on_change` run for every change heard, in this process or another.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any

from ondo.backends.store.base import EVERYTHING
from ondo.backends.store.repositories.secrets import SECRETS_TOPIC, SecretInfo, StoredSecret
from ondo.backends.store.store import Store
from ondo.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from ondo.security.secretbox import SecretBox
from ondo.units import size_text

log = logging.getLogger("ondo.security")

NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
MAX_VALUE_BYTES = 64 * 1024
# (namespace, name) of the secret that changed; ("*", "*"): any may have (the feed reconnected).
# Called at once (to drop what it holds), it returns the slower work (restarting zygotes).
ChangeListener = Callable[[str, str], Coroutine[Any, Any, None]]


def check_name(name: str) -> None:
    """A secret's name is an environment variable's, in capitals: DB_PASSWORD."""
    if not NAME_RE.fullmatch(name):
        raise ValidationError(
            f"secret name {name[:80]!r} must match {NAME_RE.pattern} (capital letters, digits"
            " and '_', not starting with a digit, at most 64): it becomes an environment"
            " variable, e.g. DB_PASSWORD"
        )


def check_value(name: str, value: bytes) -> str:
    """The value as the environment variable's text: not empty, UTF-8, no NUL, within limits.
    The messages never quote the value."""
    if not value:
        raise ValidationError(f"secret {name!r}: the value is empty; give the value on stdin")
    if len(value) > MAX_VALUE_BYTES:
        raise PayloadTooLarge(
            f"secret {name!r}: the value is {size_text(len(value))};"
            f" the limit is {size_text(MAX_VALUE_BYTES)}"
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(
            f"secret {name!r}: the value is not UTF-8 text (an environment variable holds"
            " text; encode binary values, e.g. as base64)"
        ) from None
    if "\x00" in text:
        raise ValidationError(
            f"secret {name!r}: the value holds a NUL byte, which no environment variable can"
        )
    return text


class Secrets:
    """Secrets of every namespace, over the store, encrypted with `keys()` (read on first use)."""

    def __init__(
        self, store: Store, keys: Callable[[], list[bytes]], now: Callable[[], float]
    ) -> None:
        self._store = store
        self._keys = keys
        self._now = now
        self._box: SecretBox | None = None
        self._values: dict[tuple[str, str], str] = {}
        self._generation = 0  # bumped by each change heard: a read under way is not cached
        self._listeners: list[ChangeListener] = []
        self._settling: set[asyncio.Task[None]] = set()
        self._detach: Callable[[], None] | None = None

    def watch(self) -> None:
        """Follow the change feed (each process: a secret set elsewhere reaches its functions)."""
        if self._detach is None:
            self._detach = self._store.subscribe(SECRETS_TOPIC, self._heard)

    def close(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox(self._keys())
        return self._box

    # --- the API's side -----------------------------------------------------------------

    async def put(self, namespace: str, name: str, value: bytes, by: str) -> bool:
        """Set the secret (True: it was new). Returns once this process's functions that
        declare it have restarted; other processes follow through the change feed."""
        check_name(name)
        check_value(name, value)
        ciphertext = self.box().seal(namespace, name, value)
        now = self._now()
        info = SecretInfo(namespace, name, now, now, by)
        created = await self._store.repos.secrets.put(StoredSecret(info, ciphertext))
        await self._settled()
        return created

    async def listing(self, namespace: str) -> list[SecretInfo]:
        return await self._store.repos.secrets.listing(namespace)

    async def delete(self, namespace: str, name: str) -> None:
        check_name(name)
        if not await self._store.repos.secrets.delete(namespace, name):
            raise NotFound(
                f"no secret {name!r} in namespace {namespace!r}; see `ondo secrets list`"
            )
        await self._settled()

    async def missing(self, namespace: str, names: Collection[str]) -> list[str]:
        """Which of `names` are not set in `namespace` (a deploy refuses those)."""
        if not names:
            return []
        present = {info.name for info in await self.listing(namespace)}
        return sorted(set(names) - present)

    # --- the functions' side ------------------------------------------------------------

    async def values(self, namespace: str, names: Collection[str], who: str) -> Mapping[str, str]:
        """The decrypted values of `names` for `who` (a function), each read once and then
        kept until it changes; Conflict naming the fix when one is not set."""
        out: dict[str, str] = {}
        for name in names:
            value = self._values.get((namespace, name))
            if value is None:
                value = await self._read(namespace, name, who)
            out[name] = value
        return out

    async def _read(self, namespace: str, name: str, who: str) -> str:
        generation = self._generation
        stored = await self._store.repos.secrets.get(namespace, name)
        if stored is None:
            raise Conflict(
                f"{who} declares secret {name!r}, which is not set in namespace"
                f" {namespace!r}: set it with `ondo secrets set {name}`"
                " (or remove it from the function's `secrets:` in ondo.yaml)"
            )
        value = self.box().open(namespace, name, stored.ciphertext).decode("utf-8")
        if generation == self._generation:  # no change was heard meanwhile
            self._values[(namespace, name)] = value
        return value

    def _heard(self, key: str) -> None:
        self._generation += 1
        if key == EVERYTHING:
            self._values.clear()
            namespace, name = EVERYTHING, EVERYTHING
        else:
            namespace, _, name = key.partition("/")
            self._values.pop((namespace, name), None)
        for listener in self._listeners:
            task = asyncio.get_running_loop().create_task(listener(namespace, name))
            self._settling.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reacting to a changed secret failed", exc_info=task.exception())

    async def _settled(self) -> None:
        """Wait for the reactions to the changes heard so far (this process's own change)."""
        if self._settling:
            await asyncio.wait(set(self._settling))
