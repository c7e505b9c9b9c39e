"""`kind: smtp` — an SMTP listener (aiosmtpd) that accepts mail for its domains only.

Each accepted message is stored in the spool (mailspool.py) and fsynced, then appended to the
bus as `mail.received`, and only then answered 250: nothing acknowledged is lost. With a
`smarthost:` the message is then relayed to its recipients (mailrelay.py), from the spool, so
that relaying survives restarts. A recipient outside `domains:` is refused with 550: the
listener is never an open relay. See docs/sources/smtp.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import re
import socket
import weakref
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ondo.errors import OndoError, PayloadTooLarge
from ondo.events import CloudEvent
from ondo.sources.base import Settings, SourceContext, Where
from ondo.sources.mail import ParsedMail, parse_mail
from ondo.sources.mailrelay import Relayer, Smarthost, sleep_until
from ondo.sources.mailspool import Spool, Spooled
from ondo.sources.smtpsettings import validate_settings

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from ondo.backends.store.repositories.sources import StoredSource

EVENT_TYPE = "mail.received"
MAX_HOPS = 50  # Received: headers: more means a mail loop
PRUNE_EVERY_S = 3600.0
_RECEIVED_RE = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)
_HELO_SAFE_RE = re.compile(r"[^A-Za-z0-9.:\[\]_-]")
_BAD_LOCAL_RE = re.compile(r"[%!@:]")  # percent hack, bang paths, source routes: relay tricks


class SmtpKind:
    name = "smtp"

    def validate(self, settings: Mapping[str, Any], at: Where) -> Settings:
        return validate_settings(settings, at)

    async def run(self, source: StoredSource, ctx: SourceContext) -> None:
        from aiosmtpd.smtp import SMTP as SMTPServer

        spec = dict(source.spec)
        spool = await asyncio.to_thread(Spool, ctx.data_dir)
        entries = await asyncio.to_thread(spool.entries)  # clears half-written envelopes
        for message in spool.unreadable:
            ctx.problem(message)
        smarthost = Smarthost.from_spec(spec["smarthost"]) if spec.get("smarthost") else None
        relayer = Relayer(spool, smarthost, ctx, entries) if smarthost else None
        hostname = spec.get("hostname") or socket.gethostname()
        handler = MailHandler(spec, ctx, spool, relayer, hostname)
        sessions: weakref.WeakSet[SMTPServer] = weakref.WeakSet()

        def new_session() -> SMTPServer:
            session = SMTPServer(
                handler,
                data_size_limit=spec["max_message_size"],
                hostname=hostname,
                ident="ondo",
            )
            sessions.add(session)
            return session

        loop = asyncio.get_running_loop()
        server = await loop.create_server(new_session, spec["host"], spec["port"])
        pending = sum(1 for e in entries if e.pending)
        relaying = (
            f"; relaying to {smarthost.host}:{smarthost.port} ({pending} waiting)"
            if smarthost
            else ""
        )
        ctx.connected(
            f"listening on {spec['host']}:{spec['port']} for {', '.join(spec['domains'])}{relaying}"
        )
        jobs = [_prune(spool, spec["keep_messages"], ctx)]
        if relayer is not None:
            jobs.append(relayer.run())
        try:
            await _until_one_fails(jobs)
        finally:
            server.close()
            for session in list(sessions):
                if session.transport is not None:
                    session.transport.close()
            await server.wait_closed()


class MailHandler:
    """aiosmtpd's handler: which recipients to accept, and what to do with a message."""

    def __init__(
        self,
        spec: dict[str, Any],
        ctx: SourceContext,
        spool: Spool,
        relayer: Relayer | None,
        hostname: str,
    ) -> None:
        self.domains = frozenset(spec["domains"])
        self.max_recipients: int = spec["max_recipients"]
        self.ctx = ctx
        self.spool = spool
        self.relayer = relayer
        self.hostname = hostname
        self.accepting: set[str] = set()  # refs between spool and answer

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.refusal(address)
        if refusal:
            return refusal
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def refusal(self, address: str) -> str | None:
        """Why `address` is refused (an SMTP answer), or None when it is one of ours."""
        local, at, domain = address.rpartition("@")
        if not at or not local:
            return f"550 5.1.3 <{address}>: not an address; write user@domain"
        if _BAD_LOCAL_RE.search(local.strip('"')):
            return f"550 5.7.1 <{address}>: relaying denied"
        if domain.lower().rstrip(".") not in self.domains:
            return f"550 5.7.1 <{address}>: relaying denied; mail is taken for own domains only"
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        if len(_RECEIVED_RE.findall(head)) > MAX_HOPS:
            return "554 5.4.6 Too many hops (a mail loop?)"
        mail_from = envelope.mail_from or ""
        rcpts = list(envelope.rcpt_tos)
        parsed = await asyncio.to_thread(_parse, raw)
        ref = message_ref(self.ctx.namespace, self.ctx.name, parsed.message_id, raw, rcpts)
        if parsed.unparsed:  # still kept, relayed and announced: only the fields are missing
            self.ctx.problem(f"message {ref} from <{mail_from}>: {parsed.defects[0]}")
        now = self.ctx.clock.now()
        received = self.received_header(session, ref, rcpts, now)
        entry = Spooled(ref, mail_from, rcpts, now, pending=rcpts if self.relayer else [])
        event = self.event(ref, parsed, mail_from, rcpts, now, len(raw))
        if ref in self.accepting:  # the same message on another connection, right now
            return "451 4.3.0 The same message is being received; try again later"
        self.accepting.add(ref)
        try:
            return await self.keep(entry, received + raw, event)
        finally:
            self.accepting.discard(ref)

    async def keep(self, entry: Spooled, raw: bytes, event: CloudEvent) -> str:
        """Spool, then emit, then answer: the 250 comes only once both are durable. A message
        already spooled (a sender's retry) is emitted again (the bus drops the duplicate, and
        the first try may have stopped before its emit) but not relayed again."""
        fresh = False
        try:
            if not await asyncio.to_thread(self.spool.has, entry.ref):
                fresh = True
                await asyncio.to_thread(self.spool.store, entry, raw)
            await self.emit(event)
        except (OSError, OndoError) as exc:
            if fresh:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self.spool.discard, entry.ref)
            self.ctx.problem(f"message from <{entry.mail_from}> not accepted: {exc}")
            return "451 4.3.0 The message could not be stored; try again later"
        if fresh and self.relayer is not None:
            self.relayer.add(entry)
        return f"250 OK: queued as {entry.ref}"

    async def emit(self, event: CloudEvent) -> None:
        try:
            await self.ctx.emit(event)
        except PayloadTooLarge:  # the bounds in mail.py were not enough: drop the text
            assert isinstance(event.data, dict)
            data = {**event.data, "text": "", "text_truncated": True}
            for key in ("to", "cc", "reply_to", "attachments", "defects"):
                data[key] = data[key][:10]
            await self.ctx.emit(_with_data(event, data))

    def event(
        self, ref: str, parsed: ParsedMail, mail_from: str, rcpts: list[str], now: float, size: int
    ) -> CloudEvent:
        data = {
            **parsed.data,
            "envelope": {"mail_from": mail_from, "rcpt_to": rcpts},
            "size": size,
            "message_ref": ref,
            "defects": parsed.defects,
        }
        return CloudEvent(
            id=ref,
            source=self.ctx.name,
            type=EVENT_TYPE,
            subject=rcpts[0].lower() if rcpts else None,
            time=datetime.fromtimestamp(now, UTC),
            data=data,
        )

    def received_header(self, session: Session, ref: str, rcpts: list[str], now: float) -> bytes:
        """The trace header every relay adds (RFC 5321 section 4.4)."""
        helo = _HELO_SAFE_RE.sub("", str(session.host_name or "unknown"))[:100]
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        to = f"\r\n\tfor <{rcpts[0]}>" if len(rcpts) == 1 else ""
        when = email.utils.format_datetime(datetime.fromtimestamp(now, UTC))
        line = (
            f"Received: from {helo} ([{peer}])\r\n\tby {self.hostname} (ondo)"
            f" with ESMTP id {ref}{to};\r\n\t{when}\r\n"
        )
        return line.encode("ascii", errors="replace")


def message_ref(
    namespace: str, source: str, message_id: str | None, raw: bytes, rcpts: list[str]
) -> str:
    """The event id and spool reference: the same message (by Message-ID, else by content)
    delivered again to the same recipients gets the same one, so a sender's retry after a lost
    250 is a duplicate; the recipients are part of it because MTAs deliver one message once per
    recipient domain or mailbox, and each delivery is news."""
    key = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    recipients = ",".join(sorted(r.lower() for r in rcpts))
    text = "\0".join((namespace, source, key, recipients))
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()[:32]


def _parse(raw: bytes) -> ParsedMail:
    try:
        return parse_mail(raw)
    except Exception as exc:  # the stdlib's parser has raised on malformed mail before
        why = f"message could not be parsed: {exc!r}"[:200]
        return ParsedMail(None, _EMPTY_DATA.copy(), [why], unparsed=True)


_EMPTY_DATA: dict[str, Any] = {
    "from": None,
    "from_name": None,
    "to": [],
    "cc": [],
    "reply_to": [],
    "subject": None,
    "date": None,
    "message_id": None,
    "text": "",
    "text_truncated": False,
    "attachments": [],
}


def _with_data(event: CloudEvent, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=event.id, source=event.source, type=event.type, subject=event.subject,
        time=event.time, data=data,
    )  # fmt: skip


async def _until_one_fails(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run the jobs (each runs forever) until one raises; its error, not an ExceptionGroup,
    is what the supervisor shows."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _prune(spool: Spool, keep_s: float, ctx: SourceContext) -> None:
    while True:
        await asyncio.to_thread(spool.prune, ctx.clock.now() - keep_s)
        await sleep_until(ctx.clock, ctx.clock.now() + PRUNE_EVERY_S)


KIND = SmtpKind()
