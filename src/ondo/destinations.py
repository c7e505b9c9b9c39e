"""Destinations (ip:port) a sandbox may reach even where its network policy says no."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ondo.errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Destination:
    """One allowed ip:port."""

    address: Address
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


def parse_destination(text: str) -> Destination:
    """`127.0.0.1:5432` or `[::1]:6379`; ConfigError (without location) otherwise."""
    host, sep, port = str(text).rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        address = None
    if address is not None and (address.version == 6) != bracketed:
        address = None  # "::1:80" could be either: IPv6 goes in brackets, IPv4 never
    if not sep or address is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{text!r} is not an allowed destination: write an IP address and a port, "
            'such as "127.0.0.1:5432" or "[::1]:6379" (host names are not accepted)'
        )
    return Destination(address, int(port))
