"""`bcc RECIPIENTS` and `forward [to] RECIPIENTS`: mail.received events, copied on.

Both read the original message from the smtp source's spool (the event's `message_ref`) and
send through that source's `smarthost:`, from the postmaster of its first domain (so bounces
come back to us, not to the original sender: a bounce must not reveal a blind copy).

- **bcc** relays the original bytes unchanged, in one SMTP transaction whose RCPT TO are the
  blind recipients: the headers are untouched, so the copies the original recipients get never
  name them, and theirs is the very message the others got.
- **forward** sends each recipient a new message with the original attached (mail_forward.py).

Each attempt records a delivery per recipient (masked address, ok or the smarthost's answer,
when); a later attempt sends only to the recipients not reached yet (the queue hands back the
last attempt's detail). A refusal with a 4xx answer, a lost connection or a timeout is retried
with backoff, then dead-lettered; a 5xx refusal is final. If the platform dies after the
smarthost said 250 but before the attempt was stored, that recipient gets the mail again:
delivery is at least once (a forward's resend carries the same Message-ID).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.contacts import Directory
from ondo.actions.mail_forward import forward_message, forward_message_id
from ondo.actions.mail_recipients import MailRecipient, mail_recipients, masked
from ondo.clock import Clock
from ondo.errors import RuleError
from ondo.sources.mailrelay import Outcome, Smarthost, deliver
from ondo.sources.mailspool import message_path

if TYPE_CHECKING:
    from ondo.actions.model import Action
    from ondo.backends.store.repositories.sources import StoredSource

MAIL_EVENT: Final = "mail.received"
MAX_DELIVERIES: Final = 100  # delivery records kept in a job's detail (the latest)
INSTALL_HINT: Final = "bcc and forward need aiosmtplib: pip install 'ondo[smtp]'"
FindSource = Callable[[str, str], Awaitable["StoredSource | None"]]  # (namespace, name)


class CannotCopy(Exception):
    """A job that cannot succeed however often it is tried (its message says why)."""


class MailAction:
    """One of the two words; `kind` says which. Built with the directory (contacts), the
    store's source lookup (the smarthost) and the sources' data root (the spool)."""

    destinations = True
    acts_on = MAIL_EVENT  # rules using it must be able to match mail.received (definitions.py)

    def __init__(
        self,
        kind: str,
        directory: Directory,
        find_source: FindSource,
        data_root: Path,
        clock: Clock,
    ) -> None:
        if kind not in ("bcc", "forward"):
            raise ValueError(f"MailAction is bcc or forward, not {kind!r}")
        self.kind = kind
        self._directory = directory
        self._find_source = find_source
        self._data_root = data_root
        self._clock = clock

    def validate(self, action: Action, namespace: str) -> None:
        if action.args:
            raise RuleError(
                f"{self.kind} {action.target}: `with {{…}}` is not a setting of {self.kind};"
                f" write {self.kind} RECIPIENT[, RECIPIENT…]"
            )
        book = self._directory.book(namespace)
        mail_recipients(book, namespace, (action.target, *action.cc), self.kind)

    async def perform(self, request: ActionRequest, attempt: int) -> ActionResult:
        return await self.perform_after(request, attempt, None)

    async def perform_after(
        self, request: ActionRequest, attempt: int, previous: Any
    ) -> ActionResult:
        earlier = _deliveries(previous)
        try:
            todo, smarthost, sender, raw = await self._prepare(request, earlier)
        except (CannotCopy, RuleError) as exc:
            return ActionResult(ok=False, detail={"error": str(exc)}, retryable=False)
        if not todo:
            return ActionResult(ok=True, detail=_detail(earlier, []))
        try:
            outcomes = await self._send(request, todo, smarthost, sender, raw)
        except ImportError:
            return ActionResult(ok=False, detail={"error": INSTALL_HINT}, retryable=False)
        fresh = [self._delivery(r, *sent, attempt) for r, sent in zip(todo, outcomes, strict=True)]
        detail = _detail(earlier, fresh)
        failed = [d for d in fresh if not d["ok"]]
        if not failed:
            return ActionResult(ok=True, detail=detail)
        detail["error"] = "could not reach " + "; ".join(
            f"{d['recipient']} ({d['address']}): {d['error']}" for d in failed
        )
        return ActionResult(ok=False, detail=detail, retryable=any(d["temporary"] for d in failed))

    async def _prepare(
        self, request: ActionRequest, earlier: list[dict[str, Any]]
    ) -> tuple[list[MailRecipient], Smarthost, str, bytes]:
        """(recipients not reached yet, smarthost, envelope sender, original message)."""
        event, action, namespace = request.event, request.action, request.namespace
        data = event.get("data")
        ref = data.get("message_ref") if isinstance(data, Mapping) else None
        if event.get("type") != MAIL_EVENT or not isinstance(ref, str):
            raise CannotCopy(
                f"{self.kind} copies mail: event {event.get('id')} is a {event.get('type')}"
                f" event, not a {MAIL_EVENT} event with a message_ref"
            )
        book = self._directory.book(namespace)
        everyone = mail_recipients(book, namespace, (action.target, *action.cc), self.kind)
        reached = {d.get("key") for d in earlier if d.get("ok")}
        todo = [r for r in everyone if r.key not in reached]
        source = await self._source(namespace, str(event.get("source")))
        smarthost = Smarthost.from_spec(dict(source.spec["smarthost"]))
        sender = f"postmaster@{source.spec['domains'][0]}"
        raw = await asyncio.to_thread(self._original, source, ref) if todo else b""
        return todo, smarthost, sender, raw

    async def _source(self, namespace: str, name: str) -> StoredSource:
        source = await self._find_source(namespace, name)
        if source is None or source.kind != "smtp":
            raise CannotCopy(
                f"{self.kind}: the event's source {name!r} is not an smtp source in namespace"
                f" {namespace!r} (it was removed, or the rule matched another source's event)"
            )
        if not source.spec.get("smarthost"):
            raise CannotCopy(
                f"{self.kind}: smtp source {name!r} has no smarthost; {self.kind} sends through"
                " it: add `smarthost: {host: …}` to the source in ondo.yaml"
            )
        return source

    def _original(self, source: StoredSource, ref: str) -> bytes:
        directory = self._data_root / source.namespace / source.name
        try:
            return message_path(directory, ref).read_bytes()
        except ValueError as exc:
            raise CannotCopy(f"{self.kind}: {exc}") from None
        except FileNotFoundError:
            raise CannotCopy(
                f"{self.kind}: message {ref} is no longer in the spool of source {source.name!r}"
                " (it is kept for keep_messages after it arrived)"
            ) from None

    async def _send(
        self,
        request: ActionRequest,
        todo: list[MailRecipient],
        smarthost: Smarthost,
        sender: str,
        raw: bytes,
    ) -> list[tuple[Outcome, str | None]]:
        """(outcome, Message-ID of a forward) per recipient; a bcc is one transaction."""
        if self.kind == "bcc":
            outcome = await deliver(smarthost, sender, [r.address for r in todo], raw)
            return [(_one(outcome, r.address), None) for r in todo]
        domain = sender.partition("@")[2]
        ids = [forward_message_id(request.key, r.address, domain) for r in todo]
        sends = []
        for recipient, message_id in zip(todo, ids, strict=True):
            message = forward_message(
                raw,
                sender=f"ondo <{sender}>",
                recipient=recipient.address,
                subject=_subject(request.event),
                note=_note(request),
                message_id=message_id,
                now=self._clock.now(),
            )
            sends.append(deliver(smarthost, sender, [recipient.address], message))
        return list(zip(await asyncio.gather(*sends), ids, strict=True))

    def _delivery(
        self, recipient: MailRecipient, outcome: Outcome, message_id: str | None, attempt: int
    ) -> dict[str, Any]:
        ok = recipient.address in outcome.delivered
        out: dict[str, Any] = {
            "recipient": recipient.name,
            "contact": recipient.contact,
            "channel": recipient.channel,
            "role": self.kind,
            "address": masked(recipient.address),
            "key": recipient.key,
            "ok": ok,
            "at": self._clock.now(),
            "attempt": attempt,
        }
        if message_id is not None:
            out["message_id"] = message_id
        if not ok:
            permanent = outcome.failed.get(recipient.address)
            out["error"] = permanent or outcome.retry or "not delivered"
            out["temporary"] = permanent is None
        return out


def _one(outcome: Outcome, address: str) -> Outcome:
    """The part of a transaction's outcome that concerns one recipient."""
    delivered = [address] if address in outcome.delivered else []
    failed = {address: outcome.failed[address]} if address in outcome.failed else {}
    retry = None if delivered or failed else outcome.later.get(address, outcome.retry)
    return Outcome(delivered, failed, retry)  # its own answer: no other address in its error


def _subject(event: Mapping[str, Any]) -> str | None:
    data = event.get("data")
    subject = data.get("subject") if isinstance(data, Mapping) else None
    return subject if isinstance(subject, str) else None


def _note(request: ActionRequest) -> str:
    data = request.event.get("data")
    sender = data.get("from") if isinstance(data, Mapping) else None
    return (
        f"ondo forwards a message{f' from {sender}' if isinstance(sender, str) else ''}"
        f" (rule {request.rule}); it is attached unchanged.\r\n"
    )


def _detail(earlier: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> dict[str, Any]:
    deliveries = (earlier + fresh)[-MAX_DELIVERIES:]
    reached = {d["recipient"] for d in deliveries if d.get("ok")}
    return {"reached": sorted(reached), "deliveries": deliveries}


def _deliveries(previous: Any) -> list[dict[str, Any]]:
    """The deliveries recorded by the earlier attempts (the job's last error detail)."""
    found = previous.get("deliveries") if isinstance(previous, Mapping) else None
    return [dict(d) for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []
