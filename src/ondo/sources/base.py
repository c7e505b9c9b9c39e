"""The contract every source kind fills: validate its settings at deploy, then hear the world.

A source kind is one module under `sources/` (kinds.py names them) exporting `KIND`, an object
with:

- `name` — the `kind:` users write (`mqtt`, `schedule`, …);
- `validate(settings, at)` — called at deploy with the source's settings from ondo.yaml (every
  key but `kind`). Raises `at.error(path, message)` naming the field (ondo.yaml file:line) for
  anything wrong; returns the settings as plain JSON, defaults filled in and paths resolved.
  That JSON is what the store keeps and what `run` gets back: a kind never re-validates.
- `run(source, ctx)` — hears the world until cancelled. Detaching a source is cancelling this
  coroutine, so it must clean up in `finally` (close sockets, stop servers). When it raises,
  the supervisor records the error, shows the source as retrying and runs it again with
  backoff; when it returns, the source is shown as stopped. It calls `ctx.connected()` once it
  is attached (connected, listening, watching) and `ctx.emit(...)` for each event.

Run-time problems with one input (a malformed MQTT payload, an upload over quota) are not
reasons to reconnect: the kind calls `ctx.problem(message)`, which counts the error, keeps it
as the last error shown by `ondo sources show`, and logs it. Nothing is dropped silently.

Why `run` and not Home Assistant's `attach(config, emit) -> detach`: the two are the same shape
(starting the task attaches, cancelling it detaches), but a coroutine gives every kind the same
retry, backoff and status handling for free, and an exception is a clearer "I lost the
connection" than a callback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ondo.errors import ConfigError

if TYPE_CHECKING:
    from ondo.backends.store.repositories.sources import StoredSource
    from ondo.clock import Clock
    from ondo.events import CloudEvent
    from ondo.notices import Notices
    from ondo.sources.http_routes import HttpRoutes

Settings = dict[str, Any]
FieldPath = tuple[str | int, ...]


class Where(Protocol):
    """Where a source's settings came from, for errors and relative paths."""

    @property
    def root(self) -> Path:
        """The app directory (relative paths in settings are resolved against it)."""

    def error(self, path: FieldPath, message: str) -> ConfigError:
        """An error naming `path` under the source (file:line when from ondo.yaml)."""


class SourceContext(Protocol):
    """What a running source may use: nothing else of the platform."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def data_dir(self) -> Path:
        """A private directory for this source's files (FTP homes, …), created 0700."""

    @property
    def notices(self) -> Notices:
        """The platform's own notices (the `ondo` kind subscribes to its namespace's)."""

    async def emit(self, event: CloudEvent) -> bool:
        """Append one event durably to the bus; False if its id was already there (a
        duplicate, e.g. redelivered after a crash). Raises EventError / PayloadTooLarge."""

    async def emit_many(self, events: Sequence[CloudEvent]) -> int:
        """Append events durably in one batch; how many were new."""

    def connected(self, detail: str = "") -> None:
        """The source is attached (connected, listening, watching); `detail` says to what."""

    def problem(self, message: str) -> None:
        """One input could not become an event: counted, shown as the last error, logged."""

    async def state(self) -> dict[str, str]:
        """The values this source saved (positions, last ticks), kept across restarts."""

    async def save_state(self, key: str, value: str) -> None: ...

    @property
    def http_routes(self) -> HttpRoutes:
        """The platform's table of HTTP routes, which its server consults (the http kind)."""


class SourceKind(Protocol):
    @property
    def name(self) -> str: ...

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings: ...

    async def run(self, source: StoredSource, ctx: SourceContext) -> None: ...


@dataclass(frozen=True)
class PlainWhere:
    """`Where` for settings that did not come from a file (tests, the API)."""

    root: Path
    prefix: str = ""

    def error(self, path: FieldPath, message: str) -> ConfigError:
        field = ".".join(str(p) for p in path)
        at = f"{self.prefix}.{field}" if self.prefix and field else (self.prefix or field)
        return ConfigError(f"{at}: {message}" if at else message)


def no_unknown_keys(settings: Mapping[str, Any], allowed: Sequence[str], at: Where) -> None:
    """Refuse keys a kind does not know (`kind` itself is taken out before validate)."""
    for key in settings:
        if key not in allowed:
            raise at.error((key,), f"unknown key {key!r}; allowed here: kind, {', '.join(allowed)}")
