"""bcc and forward against real peers: smtplib sends to a real smtp source (aiosmtpd) under the
real supervisor, which spools the message and relays it to an aiosmtpd smarthost; the actions
read the spool and send through that smarthost. Who gets what, the deliveries, retries only of
the recipients not reached yet, and what is refused and why."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope

from ondo.actions.base import ActionRequest, ActionResult
from ondo.actions.contacts import Directory
from ondo.actions.mail import MailAction
from ondo.actions.mail_recipients import channel_addresses
from ondo.actions.model import Action
from ondo.backends.bus.memory import MemoryBus
from ondo.backends.store import Store, open_store
from ondo.backends.store.repositories.sources import StoredContact, StoredGroup, StoredSource
from ondo.clock import ManualClock
from ondo.errors import RuleError
from ondo.metrics import Metrics
from ondo.sources.mailspool import message_path
from ondo.sources.supervisor import BusEvents, SourceSupervisor
from tests.platform_ports import closed_port
from tests.unit.sources.test_smtp import (
    Capture,
    _send,
    free_port,
    settings,
    smarthost,
    until,
)

CONTACTS = [
    StoredContact(
        "default", "trent", {"email": "mailto://ondo:pw@example.org?to=trent@example.org"}
    ),
    StoredContact(
        "default", "carol", {"email": "mailtos://carol@example.net", "mobile": "ntfy://c"}
    ),
    StoredContact("default", "eve", {"mobile": "ntfy://eve"}),
]
GROUPS = [StoredGroup("default", "exams.office", ("trent", "carol.email", "eve"))]


@dataclass
class Mail:
    store: Store
    bus: MemoryBus
    capture: Capture
    port: int
    kinds: dict[str, MailAction]
    data_dir: Path

    async def receive(self, message: EmailMessage, to: Sequence[str]) -> dict[str, Any]:
        """Bob's message through the source; the event it emitted (as the queue hands it)."""
        before = len(await self.bus.read(0, 100))
        await asyncio.to_thread(_send, self.port, message, list(to), "bob@outside.test")
        for _ in range(1000):
            found = await self.bus.read(0, 100)
            if len(found) > before:
                return found[-1].event.to_json_dict()
            await asyncio.sleep(0.01)
        raise AssertionError("no event")

    async def act(
        self, word: str, targets: Sequence[str], event: dict[str, Any], attempt: int = 1,
        previous: Any = None,
    ) -> ActionResult:  # fmt: skip
        action = Action(word, targets[0], cc=tuple(targets[1:]))
        self.kinds[word].validate(action, "default")
        request = ActionRequest("k" * 40, "default", "exams", 0, action, event, "enf-1")
        return await self.kinds[word].perform_after(request, attempt, previous)

    def to(self, address: str) -> list[Envelope]:
        return [e for e in self.capture.received if address in e.rcpt_tos]


@asynccontextmanager
async def mail(tmp_path: Path, relay: int | None = None) -> AsyncIterator[Mail]:
    relay = relay or free_port()
    async with smarthost(relay, Capture()) as capture:
        store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}", cluster="ondo")
        await store.open()
        bus, metrics, clock = MemoryBus(), Metrics(), ManualClock(1_000_000.0)
        root = tmp_path / "sources"
        sup = SourceSupervisor(
            store, BusEvents(bus, metrics), clock, metrics.registry, root, 262144
        )
        await sup.start()
        for contact in CONTACTS:
            await store.repos.directory.put_contact(contact)
        for group in GROUPS:
            await store.repos.directory.put_group(group)
        spec = settings(free_port(), relay)
        await store.repos.sources.put(StoredSource("default", "mail", "smtp", spec, "app", 1.0))
        directory = Directory(store.repos.directory, store.subscribe)
        await directory.start()
        find = store.repos.sources.get
        kinds = {w: MailAction(w, directory, find, root, clock) for w in ("bcc", "forward")}
        try:
            await until(lambda: _listening(sup), "the source to listen")
            yield Mail(store, bus, capture, spec["port"], kinds, root / "default" / "mail")
        finally:
            await directory.stop()
            await sup.stop()
            await bus.close()
            await store.close()


def _listening(sup: SourceSupervisor) -> bool:
    try:
        return sup.status("default", "mail").state == "connected"
    except Exception:
        return False


def exam_mail() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bob <bob@outside.test>"
    message["To"] = "Alice <alice@example.org>"
    message["Subject"] = "Exam results ✓"
    message["Message-ID"] = "<exam-1@outside.test>"
    message.set_content("Hello Alice,\nthe marks are in.\n")
    return message


def test_bcc_relays_the_original_bytes_and_alices_copy_does_not_reveal_trent(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            await until(lambda: bool(m.to("alice@example.org")), "alice's copy")
            result = await m.act("bcc", ["trent@example.org"], event)
            assert result.ok, result.detail
            (alice,) = m.to("alice@example.org")
            (trent,) = m.to("trent@example.org")
            spooled = message_path(m.data_dir, event["data"]["message_ref"]).read_bytes()
            assert trent.original_content == spooled == alice.original_content
            assert alice.rcpt_tos == ["alice@example.org"]
            assert trent.rcpt_tos == ["trent@example.org"]
            assert trent.mail_from == "postmaster@example.org"  # bounces come to us, not to Bob
            assert b"trent" not in (alice.original_content or b"").lower()
            (delivery,) = result.detail["deliveries"]
            assert delivery == {
                "recipient": "t***@example.org",
                "contact": None,
                "channel": None,
                "role": "bcc",
                "address": "t***@example.org",
                "key": delivery["key"],
                "ok": True,
                "at": 1_000_000.0,
                "attempt": 1,
            }
            assert "trent" not in str(result.detail)

    asyncio.run(body())


def test_forward_attaches_the_original_to_a_message_of_ours(tmp_path: Path) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            result = await m.act("forward", ["archive@example.net", "exams.office"], event)
            assert result.ok, result.detail
            assert result.detail["reached"] == [
                "a***@example.net",
                "carol.email",
                "trent.email",
            ]
            spooled = message_path(m.data_dir, event["data"]["message_ref"]).read_bytes()
            for address in ("archive@example.net", "trent@example.org", "carol@example.net"):
                (sent,) = m.to(address)
                assert sent.rcpt_tos == [address] and sent.mail_from == "postmaster@example.org"
                raw = sent.original_content or b""
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                assert parsed["To"] == address and parsed["From"] == "ondo <postmaster@example.org>"
                assert parsed["Subject"] == "Fwd: Exam results ✓"
                assert parsed["Auto-Submitted"] == "auto-forwarded"
                assert not parsed.defects
                note, attached = parsed.iter_parts()
                assert "rule exams" in note.get_content()
                assert attached.get_content_type() == "message/rfc822"
                start = raw.index(b'forwarded.eml"\r\n\r\n') + len(b'forwarded.eml"\r\n\r\n')
                assert raw[start : start + len(spooled)] == spooled  # byte for byte
            ids = {d["message_id"] for d in result.detail["deliveries"]}
            assert len(ids) == 3  # one message per recipient, each its own Message-ID
            again = await m.act("forward", ["archive@example.net"], event)
            assert again.detail["deliveries"][0]["message_id"] in ids  # a resend: the same id

    asyncio.run(body())


def test_a_temporary_refusal_is_retried_for_that_recipient_only(tmp_path: Path) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            m.capture.refuse["trent@example.org"] = "451 4.3.0 try later"
            first = await m.act("bcc", ["carol", "trent.email"], event)
            assert not first.ok and first.retryable
            assert first.detail["reached"] == ["carol.email"]
            assert first.detail["error"] == (
                "could not reach trent.email (t***@example.org): 451 4.3.0 try later"
            )
            del m.capture.refuse["trent@example.org"]
            second = await m.act("bcc", ["carol", "trent.email"], event, 2, first.detail)
            assert second.ok, second.detail
            assert len(m.to("carol@example.net")) == 1  # reached once: not sent again
            assert len(m.to("trent@example.org")) == 1
            tried = [(d["recipient"], d["ok"], d["attempt"]) for d in second.detail["deliveries"]]
            assert tried == [
                ("carol.email", True, 1),
                ("trent.email", False, 1),
                ("trent.email", True, 2),
            ]

    asyncio.run(body())


def test_a_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            m.capture.refuse["nobody@example.net"] = "550 5.1.1 no such user"
            result = await m.act("forward", ["nobody@example.net", "carol"], event)
            assert not result.ok and not result.retryable
            assert result.detail["reached"] == ["carol.email"]
            assert "n***@example.net): 550 5.1.1 no such user" in result.detail["error"]

    asyncio.run(body())


def test_an_unreachable_smarthost_is_retried(tmp_path: Path) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            spec = dict((await m.store.repos.sources.get("default", "mail")).spec)  # type: ignore[union-attr]
            spec["smarthost"] = {**spec["smarthost"], "port": closed_port()}
            source = StoredSource("default", "mail", "smtp", spec, "app", 2.0)
            await m.store.repos.sources.put(source)
            result = await m.act("bcc", ["trent@example.org"], event)
            assert not result.ok and result.retryable
            assert result.detail["deliveries"][0]["ok"] is False
            assert "smarthost 127.0.0.1:" in result.detail["error"]

    asyncio.run(body())


def test_what_cannot_be_copied_fails_for_good_with_the_reason(tmp_path: Path) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            event = await m.receive(exam_mail(), ["alice@example.org"])
            other = {**event, "type": "order.created"}
            wrong = await m.act("bcc", ["trent@example.org"], other)
            assert not wrong.retryable and "not a mail.received event" in wrong.detail["error"]
            stray = {**event, "source": "web"}
            lost = await m.act("bcc", ["trent@example.org"], stray)
            assert "source 'web' is not an smtp source" in lost.detail["error"]
            message_path(m.data_dir, event["data"]["message_ref"]).unlink()
            gone = await m.act("forward", ["trent@example.org"], event)
            assert not gone.retryable
            assert "is no longer in the spool of source 'mail'" in gone.detail["error"]
            spec = {**settings(free_port(), None)}
            await m.store.repos.sources.put(StoredSource("default", "mail", "smtp", spec))
            bare = await m.act("bcc", ["trent@example.org"], event)
            assert "has no smarthost" in bare.detail["error"] and not bare.retryable

    asyncio.run(body())


@pytest.mark.parametrize(
    ("targets", "args", "error"),
    [
        (["trent@"], None, "'trent@' is not an e-mail address"),
        (["a b@example.org"], None, "is not an e-mail address"),
        (["frank"], None, "bcc frank: there is no contact or group 'frank'"),
        (["eve"], None, "'eve' has no e-mail channel"),
        (["carol.mobile"], None, "channel carol.mobile is a ntfy:// URL"),
        (["trent@example.org"], {"x": 1}, "is not a setting of bcc"),
    ],
)
def test_recipients_are_checked_when_the_rule_is_made(
    tmp_path: Path, targets: list[str], args: dict[str, Any] | None, error: str
) -> None:
    async def body() -> None:
        async with mail(tmp_path) as m:
            action = Action("bcc", targets[0], args, tuple(targets[1:]))
            with pytest.raises(RuleError, match=error):
                m.kinds["bcc"].validate(action, "default")

    asyncio.run(body())


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("mailto://ondo:pw@example.org?to=trent@example.org", ["trent@example.org"]),
        ("mailtos://u:p@h.example.org?to=a@example.org,b@e.org", ["a@example.org", "b@e.org"]),
        ("mailto://carol@example.net", ["carol@example.net"]),
        ("mailto://u:p@smtp.example.org/dave@example.org", ["dave@example.org"]),
        ("ntfy://example.org/topic", []),
        ("json://127.0.0.1:1/x", []),
    ],
)  # fmt: skip
def test_the_addresses_of_an_email_channel(url: str, addresses: list[str]) -> None:
    assert channel_addresses(url) == addresses
