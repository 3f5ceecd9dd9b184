"""SNMPv3 User-based Security Model (RFC 3414, RFC 7860 HMAC-SHA-2, RFC 3826 AES).

Keys are localized once per (user, engine ID). Authentication protocols:
MD5 and SHA (HMAC-*-96, for old clients), SHA-224, SHA-256, SHA-384 and
SHA-512 (RFC 7860). Privacy: AES (128-bit CFB, RFC 3826), AES-192 and
AES-256 with the Blumenthal key extension (net-snmp's AES-192/AES-256), and
no DES. The engine ID is generated once and kept in ``state_dir`` with the
boot counter (:class:`EngineState`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvmon.plugins.snmp.ber import (
    SEQUENCE,
    DecodeError,
    encode_integer,
    encode_octets,
    expect,
    read_int32,
    read_octets,
    read_tlv,
    tlv,
)

#: name -> (hashlib name, digest bytes carried in msgAuthenticationParameters)
AUTH_PROTOCOLS: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 12),
    "SHA": ("sha1", 12),
    "SHA-224": ("sha224", 16),
    "SHA-256": ("sha256", 24),
    "SHA-384": ("sha384", 32),
    "SHA-512": ("sha512", 48),
}
#: name -> AES key bytes
PRIV_PROTOCOLS: dict[str, int] = {"AES": 16, "AES-128": 16, "AES-192": 24, "AES-256": 32}
MAX_BOOTS = 0x7FFFFFFF
TIME_WINDOW = 150
#: IANA PEN used in generated engine IDs (the same number as HVMON-MIB's arc)
ENGINE_PEN = 32473


class UsmError(Exception):
    """A security check failed; ``counter`` names the usmStats counter to bump."""

    def __init__(self, counter: str, message: str) -> None:
        super().__init__(message)
        self.counter = counter


def password_to_key(password: bytes, hash_name: str) -> bytes:
    """RFC 3414 A.2: hash 1 MiB of the repeated password."""
    if not password:
        raise ValueError("empty password")
    digest = hashlib.new(hash_name)
    repeat = (password * (64 // len(password) + 2))
    chunk = (repeat * (1048576 // len(repeat) + 1))[:1048576]
    digest.update(chunk)
    return digest.digest()


def localize_key(key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    return hashlib.new(hash_name, key + engine_id + key).digest()


def extend_key(key: bytes, size: int, hash_name: str) -> bytes:
    """Blumenthal key extension (draft-blumenthal-aes-usm-04, net-snmp's AES-192/256)."""
    while len(key) < size:
        key += hashlib.new(hash_name, key).digest()
    return key[:size]


@dataclass(frozen=True)
class UsmUser:
    """A configured user; passwords are kept only as the unlocalized keys."""

    name: bytes
    auth: str | None
    auth_key: bytes = field(default=b"", repr=False)
    priv: str | None = None
    priv_key: bytes = field(default=b"", repr=False)

    @classmethod
    def create(cls, name: str, auth: str | None, auth_password: str,
               priv: str | None = None, priv_password: str = "") -> UsmUser:
        if auth is None:
            return cls(name.encode(), None)
        hash_name = AUTH_PROTOCOLS[auth][0]
        auth_key = password_to_key(auth_password.encode(), hash_name)
        priv_key = password_to_key(priv_password.encode(), hash_name) if priv else b""
        return cls(name.encode(), auth, auth_key, priv, priv_key)

    @property
    def level(self) -> int:
        """Highest security level: 0 noAuthNoPriv, 1 authNoPriv, 2 authPriv."""
        return 0 if self.auth is None else (2 if self.priv else 1)


def _cfb() -> Any:
    """AES-CFB128's mode class (moved to ``decrepit`` in newer ``cryptography``)."""
    try:
        from cryptography.hazmat.decrepit.ciphers.modes import CFB
    except ImportError:  # cryptography < 43
        from cryptography.hazmat.primitives.ciphers.modes import CFB
    return CFB


@dataclass
class LocalKeys:
    """A user's keys localized to one engine ID."""

    user: UsmUser
    auth_key: bytes = field(repr=False)
    priv_key: bytes = field(repr=False)

    @classmethod
    def for_engine(cls, user: UsmUser, engine_id: bytes) -> LocalKeys:
        if user.auth is None:
            return cls(user, b"", b"")
        hash_name = AUTH_PROTOCOLS[user.auth][0]
        auth = localize_key(user.auth_key, engine_id, hash_name)
        priv = b""
        if user.priv:
            priv = extend_key(localize_key(user.priv_key, engine_id, hash_name),
                              PRIV_PROTOCOLS[user.priv], hash_name)
        return cls(user, auth, priv)

    def digest(self, message: bytes) -> bytes:
        assert self.user.auth is not None
        hash_name, size = AUTH_PROTOCOLS[self.user.auth]
        return hmac.new(self.auth_key, message, hash_name).digest()[:size]

    @property
    def digest_size(self) -> int:
        assert self.user.auth is not None
        return AUTH_PROTOCOLS[self.user.auth][1]

    def _cipher(self, boots: int, engine_time: int, salt: bytes):  # noqa: ANN202
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

        iv = boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt
        return Cipher(algorithms.AES(self.priv_key), _cfb()(iv))

    def encrypt(self, plain: bytes, boots: int, engine_time: int, salt: bytes) -> bytes:
        enc = self._cipher(boots, engine_time, salt).encryptor()
        return enc.update(plain) + enc.finalize()

    def decrypt(self, data: bytes, boots: int, engine_time: int, salt: bytes) -> bytes:
        if len(salt) != 8:
            raise UsmError("decryptionErrors", "privacy parameters must be 8 octets")
        dec = self._cipher(boots, engine_time, salt).decryptor()
        return dec.update(data) + dec.finalize()


@dataclass
class SecurityParams:
    """UsmSecurityParameters (RFC 3414 2.4)."""

    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth: bytes
    priv: bytes
    #: where the authentication parameters' content starts in the encoded parameters
    auth_at: int = 0

    @classmethod
    def decode(cls, data: bytes) -> SecurityParams:
        start, stop = expect(data, 0, len(data), SEQUENCE, "UsmSecurityParameters")
        if stop != len(data):
            raise DecodeError("trailing bytes after UsmSecurityParameters")
        engine_id, p = read_octets(data, start, stop, "msgAuthoritativeEngineID")
        boots, p = read_int32(data, p, stop, "msgAuthoritativeEngineBoots")
        etime, p = read_int32(data, p, stop, "msgAuthoritativeEngineTime")
        user, p = read_octets(data, p, stop, "msgUserName")
        auth_at = read_tlv(data, p, stop)[1]
        auth, p = read_octets(data, p, stop, "msgAuthenticationParameters")
        priv, p = read_octets(data, p, stop, "msgPrivacyParameters")
        if p != stop:
            raise DecodeError("trailing bytes in UsmSecurityParameters")
        if boots < 0 or etime < 0 or len(engine_id) > 32 or len(user) > 32:
            raise DecodeError("UsmSecurityParameters out of range")
        return cls(engine_id, boots, etime, user, auth, priv, auth_at)

    def encode(self) -> bytes:
        return tlv(SEQUENCE, encode_octets(self.engine_id) + encode_integer(self.boots)
                   + encode_integer(self.time) + encode_octets(self.user)
                   + encode_octets(self.auth) + encode_octets(self.priv))


def sign(message: bytes, at: int, keys: LocalKeys) -> bytes:
    """Put the HMAC of ``message`` (its auth parameters zeroed) at offset ``at``."""
    digest = keys.digest(message)
    return message[:at] + digest + message[at + len(digest):]


def verify(message: bytes, at: int, params: SecurityParams, keys: LocalKeys) -> None:
    """Check msgAuthenticationParameters at offset ``at`` (raises UsmError wrongDigests)."""
    size = keys.digest_size
    if len(params.auth) != size:
        raise UsmError("wrongDigests", "authentication parameters of the wrong size")
    zeroed = message[:at] + bytes(size) + message[at + size:]
    if not hmac.compare_digest(keys.digest(zeroed), params.auth):
        raise UsmError("wrongDigests", "wrong digest")


# --- the local engine -------------------------------------------------------------

def new_engine_id() -> bytes:
    """RFC 3411 SnmpEngineID: enterprise 32473, format 5 (octets), 12 random octets."""
    return (0x80000000 | ENGINE_PEN).to_bytes(4, "big") + b"\x05" + os.urandom(12)


class EngineState:
    """snmpEngineID (persisted), snmpEngineBoots (+1 per start) and snmpEngineTime."""

    FILE = "snmp-engine.json"

    def __init__(self, engine_id: bytes, boots: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine_id = engine_id
        self.boots = boots
        self._clock = clock
        self._started = clock()

    @classmethod
    def load(cls, state_dir: Path | None) -> EngineState:
        """Read and bump the state file in ``state_dir`` (a fresh ID when there is none)."""
        if state_dir is None:
            return cls(new_engine_id(), 1)
        path = Path(state_dir) / cls.FILE
        engine_id, boots = b"", 0
        try:
            data = json.loads(path.read_text())
            engine_id = bytes.fromhex(data["engine_id"])
            boots = int(data["boots"])
            if not 5 <= len(engine_id) <= 32 or not 0 <= boots < MAX_BOOTS:
                raise ValueError("out of range")
        except FileNotFoundError:
            engine_id = b""
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise ValueError(f"bad SNMP engine state in {path}: {exc}") from None
        if not engine_id:
            engine_id, boots = new_engine_id(), 0
        boots = min(boots + 1, MAX_BOOTS)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"engine_id": engine_id.hex(), "boots": boots}) + "\n")
        os.replace(tmp, path)
        return cls(engine_id, boots)

    @property
    def time(self) -> int:
        """snmpEngineTime: seconds since this start."""
        return min(int(self._clock() - self._started), MAX_BOOTS)


class UserTable:
    """Configured users and their keys localized to the local engine ID."""

    def __init__(self, users: list[UsmUser], engine_id: bytes) -> None:
        self.engine_id = engine_id
        self._keys = {u.name: LocalKeys.for_engine(u, engine_id) for u in users}

    def keys(self, name: bytes) -> LocalKeys | None:
        return self._keys.get(name)


def encode_secure(msg_id: int, max_size: int, flags: int, params: SecurityParams,
                  scoped: bytes, keys: LocalKeys | None) -> bytes:
    """A v3 message; ``scoped`` is the ScopedPDU (encrypted when FLAG_PRIV is set).

    With FLAG_AUTH the auth parameters are zeroed, the whole message is
    hashed and the digest put in place (RFC 3414 6.3.1).
    """
    from hvmon.plugins.snmp.message import FLAG_AUTH, FLAG_PRIV, USM, V3

    if flags & FLAG_AUTH:
        assert keys is not None
        params.auth = bytes(keys.digest_size)
    head = (encode_octets(params.engine_id) + encode_integer(params.boots)
            + encode_integer(params.time) + encode_octets(params.user))
    auth_tlv = encode_octets(params.auth)
    content = head + auth_tlv + encode_octets(params.priv)
    params_bytes = tlv(SEQUENCE, content)
    auth_in_params = len(params_bytes) - len(content) + len(head) + len(auth_tlv) - len(params.auth)
    version = encode_integer(V3)
    header = tlv(SEQUENCE, encode_integer(msg_id) + encode_integer(max_size)
                 + encode_octets(bytes((flags,))) + encode_integer(USM))
    params_tlv = encode_octets(params_bytes)
    body = encode_octets(scoped) if flags & FLAG_PRIV else scoped
    inner = version + header + params_tlv + body
    message = tlv(SEQUENCE, inner)
    if not flags & FLAG_AUTH:
        return message
    at = (len(message) - len(inner) + len(version) + len(header)
          + len(params_tlv) - len(params_bytes) + auth_in_params)
    assert keys is not None
    return sign(message, at, keys)
