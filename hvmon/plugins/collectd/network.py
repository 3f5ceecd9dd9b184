"""collectd's binary network protocol: value lists and notifications → UDP packets.

A packet is a sequence of parts: ``type`` (u16) and ``length`` (u16, header
included), then the body. Strings end with a NUL; numbers (``time_hr``,
``interval_hr`` in 2^-30 s, ``severity``) are big-endian u64; a values part is
a u16 count, one kind byte per value, then 8 bytes per value — GAUGE a
little-endian double, the others big-endian integers. As collectd does, a
packet repeats host, plugin, type ... only when they change, and a new packet
starts from scratch (the receiver's state is per packet).

Security levels (collectd's network.c):

* ``sign``: the packet starts with part 0x0200 holding an HMAC-SHA-256 (key:
  the password) over the username and everything after the part, then the
  username;
* ``encrypt``: the whole payload goes in part 0x0210: username length (u16),
  username, a random 16-byte IV, then AES-256-OFB (key: SHA-256 of the
  password) over SHA-1(payload) + payload.

Packets stay within ``max_size`` bytes (1452: an Ethernet frame less the IPv6
and UDP headers) including that overhead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hvmon.plugins.collectd.values import GAUGE, KINDS, Notification, ValueList

TYPE_HOST, TYPE_TIME, TYPE_PLUGIN, TYPE_PLUGIN_INSTANCE = 0x0000, 0x0001, 0x0002, 0x0003
TYPE_TYPE, TYPE_TYPE_INSTANCE, TYPE_VALUES, TYPE_INTERVAL = 0x0004, 0x0005, 0x0006, 0x0007
TYPE_TIME_HR, TYPE_INTERVAL_HR = 0x0008, 0x0009
TYPE_MESSAGE, TYPE_SEVERITY = 0x0100, 0x0101
TYPE_SIGN_SHA256, TYPE_ENCR_AES256 = 0x0200, 0x0210

DEFAULT_PORT = 25826
MAX_PACKET_SIZE = 1452
SECURITY_LEVELS = ("none", "sign", "encrypt")
SIGN_HEADER = 4 + 32          # type, length, HMAC; then the username
ENCRYPT_HEADER = 4 + 2 + 16 + 20  # type, length, username length, IV, SHA-1; + username

_HEADER = struct.Struct(">HH")
_NUMBER = struct.Struct(">HHQ")
_BE64 = struct.Struct(">q")
_LE_DOUBLE = struct.Struct("<d")
_STRING_FIELDS = (TYPE_HOST, TYPE_PLUGIN, TYPE_PLUGIN_INSTANCE, TYPE_TYPE, TYPE_TYPE_INSTANCE)


def ofb_mode(iv: bytes) -> Any:
    """AES's OFB mode (``cryptography`` moved it to its ``decrepit`` package in 44)."""
    try:
        from cryptography.hazmat.decrepit.ciphers.modes import OFB
    except ImportError:  # cryptography < 44
        from cryptography.hazmat.primitives.ciphers.modes import OFB
    return OFB(iv)


def to_cdtime(seconds: float) -> int:
    """Seconds as collectd's high-resolution time (units of 2^-30 s)."""
    return int(seconds * 1073741824.0)


@dataclass(frozen=True)
class Security:
    """A server's security level; the password never shows in ``repr``."""

    level: str = "none"
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.level not in SECURITY_LEVELS:
            raise ValueError(f"security_level must be one of {', '.join(SECURITY_LEVELS)}, "
                             f"got {self.level!r:.40}")
        if self.level != "none" and (not self.username or not self.password):
            raise ValueError(f"security_level {self.level!r} needs a username and a password")
        if len(self.username.encode()) > 255:
            raise ValueError("username: at most 255 bytes")

    @property
    def overhead(self) -> int:
        """Bytes the security part adds to a packet."""
        user = len(self.username.encode())
        if self.level == "sign":
            return SIGN_HEADER + user
        if self.level == "encrypt":
            return ENCRYPT_HEADER + user
        return 0


NONE = Security()


class _Parts:
    """Caches of encoded parts: the same strings come back in every interval."""

    def __init__(self) -> None:
        self.strings: dict[tuple[int, str], bytes] = {}
        self.packers: dict[str, Callable[[tuple[int | float, ...]], bytes]] = {}

    def string(self, code: int, text: str) -> bytes:
        part = self.strings.get((code, text))
        if part is None:
            data = text.encode() + b"\0"
            part = self.strings[(code, text)] = _HEADER.pack(code, 4 + len(data)) + data
            if len(self.strings) > 100_000:  # domains come and go: keep the cache bounded
                self.strings.clear()
        return part

    def values_body(self, type_name: str, values: tuple[int | float, ...]) -> bytes:
        """The values part of one value list of type ``type_name``."""
        packer = self.packers.get(type_name)
        if packer is None:
            packer = self.packers[type_name] = _packer(KINDS[type_name])
        return packer(values)


def _packer(kinds: tuple[int, ...]) -> Callable[[tuple[int | float, ...]], bytes]:
    """Header, count and kind bytes, then the values: GAUGE little-endian, others big-endian."""
    count = len(kinds)
    head = _HEADER.pack(TYPE_VALUES, 6 + 9 * count) + struct.pack(">H", count) + bytes(kinds)
    if all(k == GAUGE for k in kinds):
        fmt = struct.Struct("<" + "d" * count)
    elif GAUGE not in kinds:
        fmt = struct.Struct(">" + "q" * count)
    else:  # mixed byte orders: one value at a time
        def mixed(values: tuple[int | float, ...]) -> bytes:
            return head + b"".join(_LE_DOUBLE.pack(v) if k == GAUGE else _BE64.pack(v)
                                   for v, k in zip(values, kinds, strict=True))
        return mixed
    pack = fmt.pack
    return lambda values: head + pack(*values)


class Encoder:
    """Packs value lists and notifications into packets for one security level."""

    def __init__(self, security: Security = NONE, max_size: int = MAX_PACKET_SIZE) -> None:
        if max_size < 256 or max_size > 65507:
            raise ValueError(f"max_size must be from 256 to 65507 bytes, got {max_size}")
        self.security = security
        self.max_size = max_size
        self.budget = max_size - security.overhead
        self._parts = _Parts()
        self._key = (hashlib.sha256(security.password.encode()).digest()
                     if security.level == "encrypt" else b"")

    def encode(self, values: Iterable[ValueList], time: float, interval: float,
               notifications: Iterable[Notification] = ()) -> list[bytes]:
        """Finished packets (signed or encrypted as configured) for everything given."""
        payloads = self.payloads(values, time, interval, notifications)
        return [self.seal(payload) for payload in payloads]

    def payloads(self, values: Iterable[ValueList], time: float, interval: float,
                 notifications: Iterable[Notification] = ()) -> list[bytes]:
        """The plain payloads, each within the budget left by the security part."""
        budget = self.budget
        parts = self._parts
        string = parts.string
        time_part = _NUMBER.pack(TYPE_TIME_HR, 12, to_cdtime(time))
        interval_part = _NUMBER.pack(TYPE_INTERVAL_HR, 12, to_cdtime(interval))
        packets: list[bytes] = []
        chunks: list[bytes] = []
        size = 0
        state: list[str] = ["", "", "", "", ""]
        fresh = True
        values_body = parts.values_body
        for vl in values:
            host, plugin, instance, type_, type_instance, data = vl
            body = values_body(type_, data)
            if host == state[0] and plugin == state[1] and instance == state[2]:
                new = []  # the usual case: the same domain, another type
            else:
                new = [string(code, text) for code, text, old
                       in zip(_STRING_FIELDS[:3], (host, plugin, instance), state, strict=False)
                       if text != old]
            if type_ != state[3]:
                new.append(string(TYPE_TYPE, type_))
            if type_instance != state[4]:
                new.append(string(TYPE_TYPE_INSTANCE, type_instance))
            need = len(body) + sum(map(len, new)) + (24 if fresh else 0)
            if size + need > budget and chunks:
                packets.append(b"".join(chunks))
                chunks, size, fresh = [], 0, True
                new = [string(code, text) for code, text
                       in zip(_STRING_FIELDS, vl[:5], strict=True) if text]
                need = len(body) + sum(map(len, new)) + 24
            if need > budget:
                raise ValueError(f"value list {vl.identifier!r:.80} does not fit in a packet")
            if fresh:
                chunks += (time_part, interval_part)
                fresh = False
            chunks += new
            chunks.append(body)
            size += need
            state = [host, plugin, instance, type_, type_instance]
        for note in notifications:
            note_parts = self._notification(note, state)
            need = sum(map(len, note_parts))
            if size + need > budget and chunks:
                packets.append(b"".join(chunks))
                chunks, size, fresh = [], 0, True
                state = ["", "", "", "", ""]
                note_parts = self._notification(note, state)
                need = sum(map(len, note_parts))
            chunks += note_parts
            size += need
            state = [note.host, note.plugin, note.plugin_instance, note.type, note.type_instance]
            fresh = True  # the notification's time replaced the values' time
        if chunks:
            packets.append(b"".join(chunks))
        return packets

    def _notification(self, note: Notification, state: list[str]) -> list[bytes]:
        fields = (note.host, note.plugin, note.plugin_instance, note.type, note.type_instance)
        parts = [_NUMBER.pack(TYPE_TIME_HR, 12, to_cdtime(note.time)),
                 _NUMBER.pack(TYPE_SEVERITY, 12, note.severity)]
        parts += [self._parts.string(code, text) for code, text, old
                  in zip(_STRING_FIELDS, fields, state, strict=True) if text != old]
        message = note.message.encode()[:255].decode(errors="ignore")  # collectd: 256 bytes
        parts.append(self._parts.string(TYPE_MESSAGE, message))
        return parts

    def seal(self, payload: bytes) -> bytes:
        """``payload`` as sent: as it is, signed, or encrypted."""
        level = self.security.level
        if level == "none":
            return payload
        user = self.security.username.encode()
        if level == "sign":
            mac = hmac.new(self.security.password.encode(), user + payload,
                           hashlib.sha256).digest()
            return _HEADER.pack(TYPE_SIGN_SHA256, SIGN_HEADER + len(user)) + mac + user + payload
        return self._encrypt(user, payload)

    def _encrypt(self, user: bytes, payload: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

        iv = os.urandom(16)
        encryptor = Cipher(algorithms.AES(self._key), ofb_mode(iv)).encryptor()
        checksum = hashlib.sha1(payload, usedforsecurity=False).digest()  # the protocol's
        sealed = encryptor.update(checksum + payload) + encryptor.finalize()
        length = 4 + 2 + len(user) + 16 + len(sealed)
        return _HEADER.pack(TYPE_ENCR_AES256, length) + struct.pack(">H", len(user)) \
            + user + iv + sealed
