"""Egress filter: a cgroup BPF program that decides, at connect() and sendmsg(), where a
sandbox may send packets. No firewall tool needed; the kernel enforces it per cgroup2 directory.

Functions with `network: true` share the host's network namespace, so without this filter they
reach the host's loopback services and the platform itself. Two modes:

* deny-list (functions): everything outside is allowed except loopback, the unspecified address,
  link-local (cloud metadata lives there), multicast/broadcast and every address of the host's
  own interfaces; `allow` entries (ip:port) are let through first.
* allow-list (dependency builds): only the listed ip:port pairs; everything else is refused.

AF_UNIX connect/sendmsg are refused too where the kernel can hook them (6.7+): the host's
abstract unix sockets live in the network namespace a `network: true` function shares.

The programs are hand-assembled BPF_PROG_TYPE_CGROUP_SOCK_ADDR instructions loaded with bpf(2).
Once attached, the program lives as long as the cgroup; nothing has to be detached.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ondo.destinations import Address, Destination, parse_destination
from ondo.errors import ConfigError, NetworkUnavailable

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
PROG_TYPE_CGROUP_SOCK_ADDR = 18
INET4_CONNECT, INET6_CONNECT, UDP4_SENDMSG, UDP6_SENDMSG = 10, 11, 14, 15
UNIX_CONNECT, UNIX_SENDMSG = 49, 50  # kernel 6.7+
F_ALLOW_MULTI = 2
CTX_IP4, CTX_IP6, CTX_PORT = 4, 8, 24  # offsets in struct bpf_sock_addr

V4_DENIED = ("127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32")
V6_DENIED = ("::/96", "fe80::/10", "ff00::/8")  # ::/96 holds ::, ::1 and v4-compatible forms

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class EgressError(OSError):
    """Raised when the kernel refuses to load or attach an egress program."""


@dataclass(frozen=True)
class Policy:
    """What one cgroup may reach. `allow` goes first; then `deny` (deny-list mode) or nothing."""

    allow: tuple[Destination, ...] = ()
    deny: tuple[Network, ...] = ()
    default_allow: bool = True
    unix_allowed: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)


def function_policy(allow: Iterable[Destination]) -> Policy:
    """The deny-list a `network: true` function gets: outside yes, the host no."""
    deny = [ipaddress.ip_network(text) for text in (*V4_DENIED, *V6_DENIED)]
    deny += [ipaddress.ip_network(address) for address in host_addresses()]
    return Policy(allow=tuple(allow) + resolver_destinations(), deny=tuple(deny))


def allow_list_policy(allow: Iterable[Destination]) -> Policy:
    """Only `allow`; no DNS (the sandbox gets the names it needs in its /etc/hosts)."""
    return Policy(allow=tuple(allow), default_allow=False)


# --- what the host has ------------------------------------------------------------------------


def host_addresses() -> list[Address]:
    """Every local and broadcast address of the host's interfaces (what the platform listens on)."""
    found: set[Address] = set(_v4_local_addresses())
    found.update(_v6_local_addresses())
    return sorted(found, key=lambda a: (a.version, int(a)))


def _v4_local_addresses() -> Iterator[Address]:
    with contextlib.suppress(OSError):
        previous = ""
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("/32 host LOCAL") or text.startswith("/32 link BROADCAST"):
                yield ipaddress.IPv4Address(previous.split()[-1])
            previous = text


def _v6_local_addresses() -> Iterator[Address]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            yield ipaddress.IPv6Address(int(raw, 16))


def resolver_destinations() -> tuple[Destination, ...]:
    """The DNS servers of /etc/resolv.conf on port 53: name lookups must keep working even when
    the resolver runs on the host (127.0.0.53 and the like)."""
    found: list[Destination] = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    found.append(Destination(ipaddress.ip_address(fields[1].split("%")[0]), 53))
    return tuple(found)


# --- assembling -------------------------------------------------------------------------------

_LDX_W, _MOV32_X, _AND32_K, _MOV64_K = 0x61, 0xBC, 0x54, 0xB7
_JEQ32_K, _JNE32_K, _JA, _EXIT = 0x16, 0x56, 0x05, 0x95
R0, R1, R2, R3, R4 = 0, 1, 2, 3, 4
WORD_REGS = (6, 7, 8, 9)  # the four words of an IPv6 address


class Assembler:
    """BPF instructions with symbolic jump targets, resolved by `code()`."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, int, int, int | str, int]] = []  # op, dst, src, off, imm
        self.labels: dict[str, int] = {}
        self._serial = 0

    def fresh(self) -> str:
        self._serial += 1
        return f"L{self._serial}"

    def emit(self, op: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> None:
        self.insns.append((op, dst, src, off, imm))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def load(self, reg: int, offset: int) -> None:
        self.emit(_LDX_W, reg, R1, offset)

    def jump_unless(self, reg: int, value: int, target: str) -> None:
        self.emit(_JNE32_K, reg, 0, target, value)

    def jump_if(self, reg: int, value: int, target: str) -> None:
        self.emit(_JEQ32_K, reg, 0, target, value)

    def goto(self, target: str) -> None:
        self.emit(_JA, 0, 0, target)

    def verdict(self, name: str, allowed: bool) -> None:
        self.label(name)
        self.emit(_MOV64_K, R0, 0, 0, int(allowed))
        self.emit(_EXIT)

    def code(self) -> bytes:
        out = []
        for pc, (op, dst, src, off, imm) in enumerate(self.insns):
            jump = self.labels[off] - pc - 1 if isinstance(off, str) else off
            signed = imm - (1 << 32) if imm >= 1 << 31 else imm
            out.append(struct.pack("<BBhi", op, dst | (src << 4), jump, signed))
        return b"".join(out)


def _words(raw: bytes) -> list[int]:
    """The u32 values a 4-byte load sees for these network-order bytes (little-endian host)."""
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def _port_word(port: int) -> int:
    return int(struct.unpack("<I", struct.pack(">H", port) + b"\0\0")[0])


def _v4_checks(asm: Assembler, policy: Policy, ip: int) -> None:
    """Decide on the IPv4 address in register `ip` (port in R3)."""
    for dest in policy.allow:
        if dest.address.version == 4:
            skip = asm.fresh()
            asm.jump_unless(ip, _words(dest.address.packed)[0], skip)
            asm.jump_unless(R3, _port_word(dest.port), skip)
            asm.goto("allow")
            asm.label(skip)
    for net in policy.deny:
        if net.version == 4:
            asm.emit(_MOV32_X, R4, ip)
            asm.emit(_AND32_K, R4, 0, 0, _words(net.netmask.packed)[0])
            asm.jump_if(R4, _words(net.network_address.packed)[0], "deny")
    asm.goto("allow" if policy.default_allow else "deny")


def _v6_match(asm: Assembler, packed: bytes, mask: bytes, miss: str) -> None:
    for reg, value, bits in zip(WORD_REGS, _words(packed), _words(mask), strict=True):
        if bits == 0:
            continue
        if bits != 0xFFFFFFFF:
            asm.emit(_MOV32_X, R4, reg)
            asm.emit(_AND32_K, R4, 0, 0, bits)
            reg = R4
        asm.jump_unless(reg, value & bits, miss)


def _v6_checks(asm: Assembler, policy: Policy) -> None:
    full = b"\xff" * 16
    for dest in policy.allow:
        skip = asm.fresh()
        address = dest.address
        if address.version == 4:
            address = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed)
        _v6_match(asm, address.packed, full, skip)
        asm.jump_unless(R3, _port_word(dest.port), skip)
        asm.goto("allow")
        asm.label(skip)
    for net in policy.deny:
        if net.version == 6:
            miss = asm.fresh()
            _v6_match(asm, net.network_address.packed, net.netmask.packed, miss)
            asm.goto("deny")
            asm.label(miss)
    asm.goto("allow" if policy.default_allow else "deny")


def program(policy: Policy, family: int) -> bytes:
    """The instructions for AF_INET or AF_INET6 connect/sendmsg hooks."""
    asm = Assembler()
    asm.load(R3, CTX_PORT)
    if family == socket.AF_INET:
        asm.load(R2, CTX_IP4)
        _v4_checks(asm, policy, R2)
    else:
        for index, reg in enumerate(WORD_REGS):
            asm.load(reg, CTX_IP6 + 4 * index)
        asm.jump_unless(WORD_REGS[0], 0, "v6")  # ::ffff:a.b.c.d is checked as a.b.c.d
        asm.jump_unless(WORD_REGS[1], 0, "v6")
        asm.jump_unless(WORD_REGS[2], _words(b"\0\0\xff\xff")[0], "v6")
        _v4_checks(asm, policy, WORD_REGS[3])
        asm.label("v6")
        _v6_checks(asm, policy)
    asm.verdict("deny", False)
    asm.verdict("allow", True)
    return asm.code()


def constant_program(allowed: bool) -> bytes:
    asm = Assembler()
    asm.verdict("only", allowed)
    return asm.code()


# --- loading and attaching ---------------------------------------------------------------------

HOOKS = (
    (INET4_CONNECT, socket.AF_INET),
    (UDP4_SENDMSG, socket.AF_INET),
    (INET6_CONNECT, socket.AF_INET6),
    (UDP6_SENDMSG, socket.AF_INET6),
)
UNIX_HOOKS = (UNIX_CONNECT, UNIX_SENDMSG)


def _bpf(command: int, attr: bytes) -> int:
    buffer = ctypes.create_string_buffer(attr, 128)
    result = int(_libc.syscall(SYS_BPF, command, buffer, 128))
    if result < 0:
        err = ctypes.get_errno()
        raise EgressError(err, os.strerror(err))
    return result


def load(code: bytes, attach_type: int) -> int:
    """Load a CGROUP_SOCK_ADDR program; returns its fd (EgressError with the verifier's log)."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack(
        "<IIQQIIQII16sII",
        PROG_TYPE_CGROUP_SOCK_ADDR, len(code) // 8, ctypes.addressof(insns),
        ctypes.addressof(license_), 1, len(log), ctypes.addressof(log), 0, 0,
        b"ondo_egress", 0, attach_type,
    )  # fmt: skip
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except EgressError as exc:
        verifier = log.value.decode(errors="replace").strip()[-400:]
        why = f"{exc.strerror}: {verifier}" if verifier else exc.strerror
        raise EgressError(exc.errno, why) from None


def attach(cgroup_dir: Path, policy: Policy) -> None:
    """Attach the policy's programs to a cgroup2 directory (and so to all its descendants)."""
    programs = [(hook, program(policy, family)) for hook, family in HOOKS]
    if not policy.unix_allowed:
        programs += [(hook, constant_program(False)) for hook in UNIX_HOOKS]
    directory = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for hook, code in programs:
            try:
                prog = load(code, hook)
            except EgressError:
                if hook in UNIX_HOOKS:
                    continue  # a kernel before 6.7: reported by `probe`
                raise
            try:
                _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", directory, prog, hook, F_ALLOW_MULTI))
            finally:
                os.close(prog)
    finally:
        os.close(directory)


def attach_function_filter(cgroup_dir: Path, allow: Iterable[str]) -> None:
    """The `network: true` filter on a version's cgroup; NetworkUnavailable if it cannot be."""
    policy = function_policy(parse_destination(item) for item in allow)
    try:
        attach(cgroup_dir, policy)
    except OSError as exc:
        raise NetworkUnavailable(
            f"cannot filter the network of this function ({exc}); deploy it with "
            "`network: false`, or see `ondo status` (sandbox layer `egress`)"
        ) from exc


def probe(unified_base: Path | None) -> dict[str, object]:
    """Can this machine filter egress? Attaches a filter to a throwaway child cgroup."""
    if unified_base is None:
        return {"active": False, "reason": "no cgroup2 directory to attach the filter to"}
    trial = unified_base / "egress-probe"
    try:
        trial.mkdir(exist_ok=True)
        attach(trial, function_policy(()))
    except (OSError, ConfigError) as exc:
        return {"active": False, "reason": f"cannot attach a BPF egress filter: {exc}"}
    finally:
        with contextlib.suppress(OSError):
            trial.rmdir()
    unix = _unix_hooks_available()
    state: dict[str, object] = {"active": True, "path": str(unified_base), "unix_sockets": unix}
    if not unix:
        state["warning"] = "kernel before 6.7: the host's abstract unix sockets stay reachable"
    return state


def _unix_hooks_available() -> bool:
    try:
        os.close(load(constant_program(False), UNIX_CONNECT))
    except EgressError:
        return False
    return True
