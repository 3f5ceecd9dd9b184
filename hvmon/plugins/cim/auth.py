"""HTTP basic authentication against bcrypt hashes (``users = {name = "$2b$..."}``).

bcrypt is slow on purpose; a successful check is remembered as a digest of
user, hash and password, so a client that sends its credentials on every call
pays the cost once. Passwords are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Mapping

import bcrypt


def is_bcrypt_hash(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("$2a$", "$2b$", "$2y$")) and \
        len(value) == 60


class BasicAuth:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = {name: hashed.encode() for name, hashed in users.items()}
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    @property
    def required(self) -> bool:
        return bool(self.users)

    def check(self, header: str | None) -> str | None:
        """The user named by an ``Authorization`` header with the right password, else None."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        hashed = self.users.get(user)
        if hashed is None:
            return None
        key = hashlib.sha256(b"\0".join((user.encode(), hashed, password.encode()))).digest()
        with self._lock:
            if key in self._verified:
                return user
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return None
        if not ok:
            return None
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified.add(key)
        return user
