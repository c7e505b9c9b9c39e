"""The egress filter's pieces that need no kernel: destinations, host addresses, assembly."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from ondo.destinations import parse_destination
from ondo.errors import ConfigError
from ondo.runtime.egress import function_policy, host_addresses, program


@pytest.mark.parametrize(
    ("text", "shown"),
    [("127.0.0.1:5432", "127.0.0.1:5432"), ("[::1]:6379", "[::1]:6379"), ("10.0.0.1:1", None)],
)
def test_destinations_round_trip(text: str, shown: str | None) -> None:
    assert str(parse_destination(text)) == (shown or text)


@pytest.mark.parametrize("text", ["localhost:5432", "127.0.0.1", "127.0.0.1:0", "::1:80", ""])
def test_bad_destinations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="IP address and a port"):
        parse_destination(text)


def test_the_hosts_loopback_is_among_its_addresses() -> None:
    assert ipaddress.ip_address("127.0.0.1") in host_addresses()


def test_programs_are_whole_instructions_ending_in_exit() -> None:
    policy = function_policy([parse_destination("127.0.0.1:5432")])
    for family in (socket.AF_INET, socket.AF_INET6):
        code = program(policy, family)
        assert len(code) % 8 == 0 and code[-8] == 0x95  # BPF_EXIT
