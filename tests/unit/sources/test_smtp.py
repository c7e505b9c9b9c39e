"""The smtp source against real peers: smtplib (stdlib) sends, an aiosmtpd server on its own
thread plays the smarthost and keeps what it was relayed; the source runs under the real
supervisor on a SQLite store and a memory bus, with a manual clock for the relay's backoff."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ondo.backends.bus.memory import MemoryBus
from ondo.backends.store import open_store
from ondo.backends.store.repositories.sources import StoredSource
from ondo.clock import ManualClock
from ondo.errors import ConfigError
from ondo.events import CloudEvent
from ondo.metrics import Metrics
from ondo.sources.base import PlainWhere
from ondo.sources.mailspool import message_path
from ondo.sources.smtp import KIND
from ondo.sources.supervisor import BusEvents, SourceStatus, SourceSupervisor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Capture:
    """The smarthost's handler: keeps every envelope; refuses recipients named in `refuse`."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"


@asynccontextmanager
async def smarthost(port: int, capture: Capture) -> AsyncIterator[Capture]:
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield capture
    finally:
        await asyncio.to_thread(controller.stop)


@dataclass
class Running:
    supervisor: SourceSupervisor
    bus: MemoryBus
    clock: ManualClock
    port: int
    data_dir: Path

    def status(self) -> SourceStatus:
        return self.supervisor.status("default", "mail")

    async def events(self) -> list[CloudEvent]:
        return [stored.event for stored in await self.bus.read(0, 100)]

    async def send(self, message: EmailMessage | bytes, to: list[str], sender: str) -> Any:
        return await asyncio.to_thread(_send, self.port, message, to, sender)


def _send(port: int, message: EmailMessage | bytes, to: list[str], sender: str) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        if isinstance(message, bytes):
            return client.sendmail(sender, to, message)
        return client.send_message(message, sender, to)


def settings(
    port: int, relay_port: int | None, relay: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    raw: dict[str, Any] = {"port": port, "domains": ["example.org", "Example.NET."], **more}
    if relay_port is not None:
        raw["smarthost"] = {"host": "127.0.0.1", "port": relay_port, "tls": "none", **(relay or {})}
    return KIND.validate(raw, PlainWhere(Path("."), "sources.mail"))


@asynccontextmanager
async def running_source(
    tmp_path: Path,
    spec: dict[str, Any],
    clock: ManualClock | None = None,
    max_event_bytes: int = 262144,
) -> AsyncIterator[Running]:
    store = open_store(f"sqlite:///{tmp_path / 'ondo.db'}", cluster="ondo")
    await store.open()
    bus = MemoryBus()
    metrics = Metrics()
    clock = clock or ManualClock(1_000_000.0)
    sup = SourceSupervisor(
        store,
        BusEvents(bus, metrics),
        clock,
        metrics.registry,
        tmp_path / "sources",
        max_event_bytes,
    )
    await sup.start()
    await store.repos.sources.put(StoredSource("default", "mail", "smtp", spec, "app", 1.0))
    running = Running(sup, bus, clock, spec["port"], tmp_path / "sources" / "default" / "mail")
    try:
        await until(lambda: _connected(sup), "the source to listen")
        yield running
    finally:
        await sup.stop()
        await bus.close()
        await store.close()


def _connected(sup: SourceSupervisor) -> bool:
    try:
        return sup.status("default", "mail").state == "connected"
    except Exception:
        return False


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def until_events(source: Running, count: int) -> list[CloudEvent]:
    for _ in range(1000):
        found = await source.events()
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {count} events")


def report(sender: str = "Alice Doe <alice@outside.test>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Bob <bob@example.org>, carol@example.org"
    message["Cc"] = "Dave <dave@example.net>"
    message["Subject"] = "Quarterly report ✓"
    message["Message-ID"] = "<report-1@outside.test>"
    message.set_content("Hello Bob,\nthe report is attached.\n.a line with a leading dot\n")
    message.add_attachment(b"%PDF-1.4 " + b"x" * 1000, "application", "pdf", filename="q3.pdf")
    return message


def test_accepted_mail_becomes_an_event_and_is_relayed(tmp_path: Path) -> None:
    async def body() -> None:
        relay = free_port()
        async with smarthost(relay, Capture()) as capture:
            spec = settings(free_port(), relay)
            async with running_source(tmp_path, spec) as source:
                refused = await source.send(
                    report(), ["bob@example.org", "Dave@EXAMPLE.net"], "alice@outside.test"
                )
                assert refused == {}
                (event,) = await until_events(source, 1)
                await until(lambda: len(capture.received) == 1, "the relayed message")
        data = event.data
        assert isinstance(data, dict)
        assert (event.type, event.source, event.subject) == (
            "mail.received",
            "mail",
            "bob@example.org",
        )
        assert data["from"] == "alice@outside.test" and data["from_name"] == "Alice Doe"
        assert data["to"] == ["bob@example.org", "carol@example.org"]
        assert data["cc"] == ["dave@example.net"]
        assert data["subject"] == "Quarterly report ✓"
        assert data["text"] == "Hello Bob,\nthe report is attached.\n.a line with a leading dot\n"
        assert data["attachments"] == [
            {"name": "q3.pdf", "size": 1009, "content_type": "application/pdf"}
        ]
        assert data["message_id"] == "report-1@outside.test"
        assert data["envelope"] == {
            "mail_from": "alice@outside.test",
            "rcpt_to": ["bob@example.org", "Dave@EXAMPLE.net"],
        }
        assert data["defects"] == [] and data["size"] > 1009
        assert event.id == data["message_ref"]
        (relayed,) = capture.received
        assert relayed.mail_from == "alice@outside.test"
        assert relayed.rcpt_tos == ["bob@example.org", "Dave@EXAMPLE.net"]
        content = relayed.original_content or b""
        assert content.startswith(b"Received: from ")
        assert b"Subject: Quarterly report" in content and b"q3.pdf" in content
        assert b"\n.a line with a leading dot" in content  # dot-stuffing undone at each hop
        kept = message_path(source.data_dir, data["message_ref"]).read_bytes()
        assert kept.replace(b"\r\n", b"\n") == content.replace(b"\r\n", b"\n")

    asyncio.run(body())


def test_other_domains_are_refused_with_550_and_nothing_is_relayed(tmp_path: Path) -> None:
    async def body() -> None:
        relay = free_port()
        async with (
            smarthost(relay, Capture()) as capture,
            running_source(tmp_path, settings(free_port(), relay)) as source,
        ):
            for victim in ("victim@elsewhere.test", "victim%elsewhere.test@example.org"):
                with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                    await source.send(report(), [victim], "spammer@outside.test")
                code, answer = refused.value.recipients[victim]
                assert code == 550 and b"relaying denied" in answer
            mixed = await source.send(
                b"Subject: hi\r\nMessage-ID: <m2@x>\r\n\r\nhello\r\n",
                ["victim@elsewhere.test", "bob@example.org"],
                "alice@outside.test",
            )
            assert mixed["victim@elsewhere.test"][0] == 550
            (event,) = await until_events(source, 1)
            await until(lambda: len(capture.received) == 1, "the allowed message relayed")
        assert [e.rcpt_tos for e in capture.received] == [["bob@example.org"]]
        assert isinstance(event.data, dict)
        assert event.data["envelope"]["rcpt_to"] == ["bob@example.org"]

    asyncio.run(body())


LATIN1_NO_CHARSET = (
    b"From: =?iso-8859-1?q?Jos=E9?= <jose@outside.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: caf\xe9 cr\xe8me\r\n"
    b"Message-ID: <latin1@outside.test>\r\n"
    b"\r\n"
    b"Un caf\xe9, s'il vous pla\xeet.\r\n"
)
BROKEN_MIME = (
    b"From: bob@outside.test\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: =?x-unknown-charset?q?broken?=\r\n"
    b'Content-Type: multipart/mixed; boundary="never-closed"\r\n'
    b"\r\n"
    b"--never-closed\r\n"
    b"Content-Type: text/plain; charset=klingon\r\n"
    b"\r\n"
    b"plain \xff\xfe text\r\n"
    b"--never-closed\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"!!!not base64 at all***\r\n"
)


def test_badly_encoded_mail_still_becomes_an_event(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_source(tmp_path, settings(free_port(), None)) as source:
            for raw in (LATIN1_NO_CHARSET, BROKEN_MIME):
                assert await source.send(raw, ["bob@example.org"], "x@outside.test") == {}
            latin, broken = await until_events(source, 2)
            assert source.status().errors == 0  # parsed, with defects: not a problem
        assert isinstance(latin.data, dict) and isinstance(broken.data, dict)
        assert latin.data["text"] == "Un café, s'il vous plaît.\n"
        assert latin.data["subject"] == "café crème"
        assert latin.data["from_name"] == "José"
        assert broken.data["text"].startswith("plain ") and "\ufffd" in broken.data["text"]
        assert any("klingon" in d for d in broken.data["defects"])
        assert broken.data["attachments"][0]["name"] == "data.bin"
        assert broken.data["message_id"] is None and broken.id == broken.data["message_ref"]

    asyncio.run(body())


def test_a_message_over_the_size_limit_is_refused_with_552(tmp_path: Path) -> None:
    async def body() -> None:
        spec = settings(free_port(), None, max_message_size="2 KiB")
        async with running_source(tmp_path, spec) as source:
            big = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 200
            with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
                await source.send(big, ["bob@example.org"], "x@outside.test")
            assert refused.value.smtp_code == 552
            small = b"Subject: small\r\nMessage-ID: <s@x>\r\n\r\nfits\r\n"
            await source.send(small, ["bob@example.org"], "x@outside.test")
            events = await until_events(source, 1)
        assert [e.data["subject"] for e in events if isinstance(e.data, dict)] == ["small"]

    asyncio.run(body())


def test_a_mail_whose_event_would_pass_the_event_limit_loses_its_text(tmp_path: Path) -> None:
    """Under max_message_size but over the event size limit: the event still comes, without
    the text (text_truncated), so rules about the mail fire; nothing is refused."""

    async def body() -> None:
        spec = settings(free_port(), None)
        async with running_source(tmp_path, spec, max_event_bytes=8192) as source:
            text = b"a line of the long report\r\n" * 1000  # 27 KB of text
            long = b"Subject: long\r\nMessage-ID: <l@x>\r\n\r\n" + text
            assert await source.send(long, ["bob@example.org"], "x@outside.test") == {}
            (event,) = await until_events(source, 1)
        assert isinstance(event.data, dict)
        assert event.data["subject"] == "long" and event.data["text"] == ""
        assert event.data["text_truncated"] is True
        assert len(event.encoded) <= 8192

    asyncio.run(body())


def test_a_duplicate_delivery_is_one_event_and_one_relay(tmp_path: Path) -> None:
    async def body() -> None:
        relay = free_port()
        async with (
            smarthost(relay, Capture()) as capture,
            running_source(tmp_path, settings(free_port(), relay)) as source,
        ):
            await source.send(report(), ["bob@example.org"], "alice@outside.test")
            await until(lambda: len(capture.received) == 1, "the first relay")
            await source.send(report(), ["bob@example.org"], "alice@outside.test")
            other = b"Subject: next\r\nMessage-ID: <next@x>\r\n\r\nnext\r\n"
            await source.send(other, ["bob@example.org"], "alice@outside.test")
            await until(lambda: len(capture.received) == 2, "the next message relayed")
            events = await source.events()
        assert [e.data["subject"] for e in events if isinstance(e.data, dict)] == [
            "Quarterly report ✓",
            "next",
        ]
        assert b"Subject: next" in (capture.received[1].original_content or b"")

    asyncio.run(body())


def test_a_spooled_message_is_relayed_after_a_restart_and_retries_back_off(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        relay, port = free_port(), free_port()
        spec = settings(port, relay, relay={"retry_first": "1m", "retry_max": "2m"})
        clock = ManualClock(1_000_000.0)
        async with running_source(tmp_path, spec, clock) as source:  # no smarthost listening
            await source.send(report(), ["bob@example.org"], "alice@outside.test")
            await until_events(source, 1)
            await until(lambda: source.status().errors == 1, "the failed relay")
            assert "retrying" in (source.status().last_error or "")
            clock.advance(61)
            await until(lambda: source.status().errors == 2, "the second attempt")
        async with (
            smarthost(relay, Capture()) as capture,
            running_source(tmp_path, spec, clock) as source,
        ):
            await until(lambda: len(capture.received) == 1, "the relay after restart")
            assert source.status().errors == 0
        assert capture.received[0].rcpt_tos == ["bob@example.org"]
        assert b"the report is attached" in (capture.received[0].original_content or b"")

    asyncio.run(body())


def test_a_recipient_the_smarthost_refuses_is_a_problem_and_not_retried(tmp_path: Path) -> None:
    async def body() -> None:
        relay = free_port()
        refusal = {"gone@example.org": "550 5.1.1 no such user"}
        async with (
            smarthost(relay, Capture(refuse=refusal)) as capture,
            running_source(tmp_path, settings(free_port(), relay)) as source,
        ):
            await source.send(
                report(), ["gone@example.org", "bob@example.org"], "alice@outside.test"
            )
            await until(lambda: source.status().errors == 1, "the refusal")
            assert "gone@example.org refused: 550 5.1.1 no such user" in (
                source.status().last_error or ""
            )
            other = b"Subject: next\r\nMessage-ID: <next@x>\r\n\r\nnext\r\n"
            await source.send(other, ["bob@example.org"], "alice@outside.test")
            await until(lambda: len(capture.received) == 2, "the next message")
        assert [e.rcpt_tos for e in capture.received] == [["bob@example.org"], ["bob@example.org"]]

    asyncio.run(body())


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ({}, "domains", "is required"),
        ({"domains": []}, "domains", "non-empty list"),
        ({"domains": ["not a domain"]}, "domains.0", "is not a domain"),
        ({"domains": ["a.org"], "relay": 1}, "relay", "unknown key 'relay'"),
        ({"domains": ["a.org"], "port": 0}, "port", "port number"),
        ({"domains": ["a.org"], "max_message_size": "lots"}, "max_message_size", "a size"),
        ({"domains": ["a.org"], "keep_messages": "forever"}, "keep_messages", "not understood"),
        ({"domains": ["a.org"], "smarthost": {"port": 25}}, "smarthost", "needs host"),
        (
            {"domains": ["a.org"], "smarthost": {"host": "h", "tls": "yes"}},
            "smarthost.tls",
            "one of",
        ),
        (
            {"domains": ["a.org"], "smarthost": {"host": "h", "username": "u"}},
            "smarthost",
            "give both",
        ),
        (
            {"domains": ["a.org"], "smarthost": {"host": "h", "sender": "x"}},
            "smarthost.sender",
            "unknown",
        ),
    ],
)
def test_bad_settings_name_the_field(raw: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KIND.validate(raw, PlainWhere(Path("."), "sources.mail"))
    assert str(caught.value).startswith(f"sources.mail.{field}: ")
    assert says in str(caught.value)


def test_defaults_are_filled_in() -> None:
    spec = KIND.validate({"domains": ["Example.org"]}, PlainWhere(Path(".")))
    assert spec == {
        "host": "127.0.0.1",
        "port": 2525,
        "domains": ["example.org"],
        "hostname": None,
        "max_message_size": 10 << 20,
        "max_recipients": 100,
        "keep_messages": 7 * 86400.0,
        "smarthost": None,
    }


def test_a_message_the_bus_cannot_take_is_answered_451_and_not_kept(tmp_path: Path) -> None:
    async def body() -> None:
        relay = free_port()
        async with (
            smarthost(relay, Capture()) as capture,
            running_source(tmp_path, settings(free_port(), relay)) as source,
        ):
            await source.bus.close()  # the bus is away: the message cannot be announced
            with pytest.raises(smtplib.SMTPDataError) as refused:
                await source.send(report(), ["bob@example.org"], "alice@outside.test")
            assert refused.value.smtp_code == 451
            assert "not accepted" in (source.status().last_error or "")
            assert list((source.data_dir / "messages").iterdir()) == []
        assert capture.received == []

    asyncio.run(body())
