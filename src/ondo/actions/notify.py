"""`notify RECIPIENTS [cc RECIPIENTS] [saying "TEMPLATE"] [with {"title": "…"}]` through Apprise.

Recipients are names in the directory (contacts.py): `bob.mobile` one channel, `bob` every
channel of bob, `alice.family` a group. Each channel is sent on its own (Apprise's `notify` is
synchronous: it runs on a small thread pool of this kind), and each outcome is recorded in the
job's detail as a delivery: who, which channel, the masked address, ok or the error, and when.
`ondo trace` prints them.

A failed channel fails the attempt (retried with backoff, then dead-lettered); the next attempt
sends only to the channels not reached yet: it continues from the last attempt's deliveries,
which the queue hands back (`perform_after`). If the platform dies after a channel was reached
but before the attempt was stored, that channel is sent again: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.contacts import Channel, Directory, recipients
from ondo.actions.message import check_template, default_message, render
from ondo.clock import Clock
from ondo.errors import ActionNotAvailable, RuleError

if TYPE_CHECKING:
    from ondo.actions.model import Action

RuleFields = Callable[[str, str], Sequence[str]]  # (namespace, rule) -> tested data fields
SEND_THREADS: Final = 8  # Apprise sends at once (each blocks a thread while it waits)
MAX_DELIVERIES: Final = 100  # delivery records kept in a job's detail (the latest)
WITH_KEYS: Final = ("title",)
INSTALL_HINT: Final = "notify needs Apprise: pip install 'ondo[notify]'"


class NotifyAction:
    kind = "notify"
    destinations = True

    def __init__(self, directory: Directory, rule_fields: RuleFields, clock: Clock) -> None:
        self._directory = directory
        self._rule_fields = rule_fields
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None

    def validate(self, action: Action, namespace: str) -> None:
        where = f"notify {action.target}"
        if not apprise_installed():
            raise ActionNotAvailable(f"{where}: {INSTALL_HINT}")
        if action.saying is not None:
            check_template(action.saying, f'{where} saying "…"')
        for key, value in (action.args or {}).items():
            if key not in WITH_KEYS or not isinstance(value, str):
                raise RuleError(
                    f'{where}: with {{"{key}": …}} is not a setting of notify; it takes'
                    ' {"title": "TEMPLATE"} (the message itself goes after `saying`)'
                )
            check_template(value, f"{where} title")
        book = self._directory.book(namespace)
        for channel in recipients(book, namespace, action.target, action.cc):
            problem = url_problem(channel.url)
            if problem:
                raise RuleError(f"{where}: {channel.name}: {problem}")

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        return await self.perform_after(request, attempt, None)

    async def perform_after(
        self, request: ActionRequest, attempt: int, previous: Any
    ) -> ActionResult:
        """An attempt that sends only to the channels the earlier ones did not reach."""
        action, namespace = request.action, request.namespace
        try:
            channels = recipients(
                self._directory.book(namespace), namespace, action.target, action.cc
            )
        except RuleError as exc:  # deleted since the rule was made: redeploy it
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        earlier = _deliveries(previous)
        reached = {d["recipient"] for d in earlier if d.get("ok")}
        title, body, warnings = self._message(request)
        todo = [c for c in channels if c.name not in reached]
        outcomes = await asyncio.gather(*(self._send(c, title, body) for c in todo))
        now = self._clock.now()
        fresh = [
            _delivery(c, ok, error, now, attempt)
            for c, (ok, error) in zip(todo, outcomes, strict=True)
        ]
        deliveries = (earlier + fresh)[-MAX_DELIVERIES:]
        failed = [d for d in fresh if not d["ok"]]
        detail: dict[str, Any] = {
            "reached": sorted(reached | {d["recipient"] for d in fresh if d["ok"]}),
            "deliveries": deliveries,
        }
        if warnings:
            detail["warnings"] = warnings
        if not failed:
            return ActionResult(ok=True, detail=detail)
        detail["error"] = "could not reach " + "; ".join(
            f"{d['recipient']} ({d['address']}): {d['error']}" for d in failed
        )
        return ActionResult(ok=False, detail=detail, retryable=True)

    def _message(self, request: ActionRequest) -> tuple[str, str, list[str]]:
        """(title, body, warnings) for the event: the template's, or the default sentence."""
        action, event = request.action, request.event
        fields = self._rule_fields(request.namespace, request.rule)
        title, body = default_message(event, request.rule, fields)
        warnings: list[str] = []
        if action.saying is not None:
            body, warnings = render(action.saying, event, request.rule)
        given = (action.args or {}).get("title")
        if isinstance(given, str):
            title, more = render(given, event, request.rule)
            warnings += more
        return title, body, warnings

    async def _send(self, channel: Channel, title: str, body: str) -> tuple[bool, str]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="ondo-notify")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, send_now, channel.url, title, body)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def send_now(url: str, title: str, body: str) -> tuple[bool, str]:
    """Send one notification with Apprise in this thread: (ok, why not)."""
    apprise = loaded_apprise()
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return False, "Apprise cannot use this URL"
    heard = _ThreadLog()
    logger = logging.getLogger("apprise")
    logger.addHandler(heard)
    try:
        ok = bool(plugin.notify(body=body, title=title))
    except Exception as exc:  # a plugin's bug is this channel's failure, not the job's crash
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        logger.removeHandler(heard)
    return ok, "" if ok else (heard.said() or "Apprise reported a failure")


class _ThreadLog(logging.Handler):
    """Apprise's warnings from this thread only: why a channel failed (others run at once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._thread = threading.get_ident()
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self._lines.append(record.getMessage())

    def said(self) -> str:
        return " ".join(self._lines[-2:])


_loading = threading.Lock()
_loaded: list[Any] = []


def loaded_apprise() -> Any:
    """The apprise module with its services loaded. They load on the first URL Apprise reads;
    one imports the deprecated `imghdr`, whose warning is Apprise's business, not our users'."""
    with _loading:
        if not _loaded:
            import apprise

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                apprise.Apprise.instantiate("json://localhost")
            _loaded.append(apprise)
        return _loaded[0]


def apprise_installed() -> bool:
    try:
        loaded_apprise()
    except ImportError:
        return False
    return True


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use a channel's URL (None: it can, or Apprise is not installed)."""
    try:
        apprise = loaded_apprise()
    except ImportError:
        return None
    if apprise.Apprise.instantiate(url) is None:
        return (
            f"Apprise cannot use {url.split('://', 1)[0]}:// URL (see Apprise's list of services)"
        )
    return None


def _delivery(channel: Channel, ok: bool, error: str, at: float, attempt: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "recipient": channel.name,
        "contact": channel.contact,
        "channel": channel.channel,
        "role": channel.role,
        "address": channel.masked,
        "ok": ok,
        "at": at,
        "attempt": attempt,
    }
    if not ok:
        out["error"] = error
    return out


def _deliveries(previous: Any) -> list[dict[str, Any]]:
    """The deliveries recorded by the earlier attempts (the job's last error detail)."""
    found = previous.get("deliveries") if isinstance(previous, Mapping) else None
    return [dict(d) for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []
