"""Who a `bcc` or `forward` reaches: plain e-mail addresses, and contacts' e-mail channels.

A recipient is written `trent@example.org` (an address), `trent.email` (one channel of a
contact), `trent` (every e-mail channel of the contact) or `exams.office` (a group: its
members' e-mail channels). A channel is an e-mail channel when its Apprise URL names an address:
`mailto://user:pass@example.org?to=trent@example.org` (the `to=` addresses), a path of
addresses, else `mailto://trent@example.org` itself. Other channels (ntfy, json, …) are skipped
when a whole contact or group is named, and refused when named one by one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ondo.actions.contacts import Book, Channel
from ondo.errors import RuleError

# An address as the smtp source accepts it: ASCII, no relay tricks, a dotted domain.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*"
    r"@(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$"
)
_MAIL_SCHEMES = ("mailto", "mailtos")


@dataclass(frozen=True)
class MailRecipient:
    """One address to send to, with the name the rule reached it by (for the trace)."""

    address: str
    contact: str | None = None  # None: written as a plain address in the rule
    channel: str | None = None

    @property
    def name(self) -> str:
        """How trace names it: `trent.email`, or the masked address of a plain one."""
        if self.contact is None:
            return masked(self.address)
        return f"{self.contact}.{self.channel}"

    @property
    def key(self) -> str:
        """Stable and not readable: what earlier attempts' deliveries are matched on."""
        return hashlib.sha256(self.address.lower().encode()).hexdigest()[:16]


def is_address(text: str) -> bool:
    return len(text) <= 254 and _ADDRESS.match(text) is not None


def masked(address: str) -> str:
    """`b***@example.org`: enough to tell who, not enough to harvest."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mail_recipients(
    book: Book, namespace: str, names: Sequence[str], word: str
) -> list[MailRecipient]:
    """Every address `names` reach, each once; RuleError saying which name is wrong and why."""
    found: dict[str, MailRecipient] = {}
    for name in names:
        for recipient in _resolve(book, namespace, name, word):
            found.setdefault(recipient.address.lower(), recipient)
    return list(found.values())


def _resolve(book: Book, namespace: str, name: str, word: str) -> list[MailRecipient]:
    if "@" in name:
        if not is_address(name):
            raise RuleError(
                f"{word} {name}: {name!r} is not an e-mail address; write user@example.org"
                " (ASCII, no spaces), or the name of a contact or group"
            )
        return [MailRecipient(name)]
    try:
        channels = book.resolve(name, namespace)
    except RuleError as exc:
        raise RuleError(str(exc).replace("notify ", f"{word} ", 1)) from None
    one_channel = "." in name and name not in book.groups
    reached: list[MailRecipient] = []
    for channel in channels:
        addresses = channel_addresses(channel.url)
        if not addresses and one_channel:
            raise RuleError(f"{word} {name}: {_not_mail(channel)}")
        reached += [MailRecipient(a, channel.contact, channel.channel) for a in addresses]
    if not reached:
        raise RuleError(
            f"{word} {name}: {name!r} has no e-mail channel (a mailto:// URL naming an"
            " address); give it one, or write the address itself"
        )
    return reached


def _not_mail(channel: Channel) -> str:
    scheme = channel.url.split("://", 1)[0]
    return (
        f"channel {channel.name} is a {scheme}:// URL, not an e-mail address; mail can only be"
        " copied to a mailto:// channel or an address"
    )


def channel_addresses(url: str) -> list[str]:
    """The addresses an Apprise mailto:// URL sends to ([] for any other URL)."""
    try:
        parts = urlsplit(url)
        user, host = parts.username, parts.hostname
    except ValueError:
        return []
    if parts.scheme.lower() not in _MAIL_SCHEMES:
        return []
    for key, values in parse_qs(parts.query).items():
        if key.lower() == "to":
            return _addresses(v for value in values for v in re.split(r"[,\s]+", unquote(value)))
    in_path = _addresses(unquote(p) for p in parts.path.split("/"))
    if in_path:
        return in_path
    return _addresses([f"{unquote(user)}@{host}"] if user and host else [])


def _addresses(candidates: Iterable[str]) -> list[str]:
    return [c for c in candidates if is_address(c)]
