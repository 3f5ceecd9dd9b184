"""The QEMU driver's Secret store: definitions and values under ``etc/secrets``.

Values never live in any XML. A persistent value is stored as
``UUID.value``: AES-256-GCM under the driver's master key (``etc/secrets/
master.key``, 32 random bytes made on first use), a fresh 12-byte nonce and
the secret's UUID as associated data, so a value file copied onto another
secret does not decrypt. Every file is 0600 in a 0700 directory. An
``ephemeral`` secret's value is kept in memory only. Values are never logged;
the driver reads them itself (:meth:`SecretStore.value`) for LUKS volumes and
iSCSI CHAP, while the public API refuses ``private`` ones (and read-only
connections are refused by the access gate before the driver is called).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hvmon.core.drivers.base import SecretRef
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NoSuchSecret,
    OperationFailed,
    OperationInvalid,
)
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.secret import Secret as SecretXML

log = logging.getLogger("hvmon.qemu.secrets")

MAX_SECRET_BYTES = 64 * 1024
_NONCE = 12


def secrets_dir(paths: QemuPaths) -> Path:
    """``etc/secrets`` beside the driver's ``etc/qemu``."""
    return paths.config.parent / "secrets"


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _ref(xml: SecretXML) -> SecretRef:
    return SecretRef(xml.uuid, xml.usage_type or "none", xml.usage_id)


class SecretStore:
    """Secret definitions and encrypted values in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self.lock = threading.RLock()
        self._key: bytes | None = None
        self._ephemeral: dict[str, bytes] = {}
        self.defs: dict[str, SecretXML] = {}
        for path in sorted(self.dir.glob("*.xml")):
            try:
                xml = SecretXML.from_xml(path.read_text())
            except Exception as exc:  # noqa: BLE001 - one broken file must not hide the rest
                log.warning("ignoring secret file %s: %s", path, exc)
                continue
            if xml.uuid:
                self.defs[xml.uuid] = xml

    # --- the master key -------------------------------------------------------------
    def _master_key(self) -> bytes:
        if self._key is None:
            path = self.dir / "master.key"
            try:
                key = path.read_bytes()
            except FileNotFoundError:
                key = AESGCM.generate_key(bit_length=256)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(key)
            if len(key) != 32:
                raise OperationFailed(f"the secret master key {path} is damaged")
            self._key = key
        return self._key

    # --- definitions ------------------------------------------------------------------
    def get(self, uuid: str) -> SecretXML:
        xml = self.defs.get(uuid)
        if xml is None:
            raise NoSuchSecret(f"secret not found: no secret with matching uuid '{uuid}'")
        return xml

    def refs(self) -> list[SecretRef]:
        with self.lock:
            return [_ref(x) for x in self.defs.values()]

    def lookup(self, by: str, value: str, usage_type: str | None = None) -> SecretRef:
        with self.lock:
            if by == "uuid":
                return _ref(self.get(value))
            if by != "usage":
                raise InvalidArgument(f"cannot look up a secret by {by}")
            for xml in self.defs.values():
                if xml.usage_type == usage_type and xml.usage_id == value:
                    return _ref(xml)
        raise NoSuchSecret(f"secret not found: no secret with matching usage '{value}'")

    def define(self, text: str) -> SecretRef:
        secret = SecretXML.from_xml(text)
        schema.validate(secret.element, "secret")
        with self.lock:
            defaults.fill_secret(secret)
            for other in self.defs.values():
                if other.uuid != secret.uuid and secret.usage_type and \
                        (other.usage_type, other.usage_id) == (secret.usage_type,
                                                               secret.usage_id):
                    raise AlreadyExists(f"a secret with UUID {other.uuid} already defined for "
                                        f"use with {secret.usage_id}")
            existing = self.defs.get(secret.uuid)
            if existing is not None and (existing.usage_type, existing.usage_id) != (
                    secret.usage_type, secret.usage_id):
                raise AlreadyExists(f"a secret with UUID {secret.uuid} is already defined for "
                                    f"use with {existing.usage_id or existing.usage_type}")
            if existing is not None and existing.ephemeral != secret.ephemeral:
                self._drop_value(secret.uuid)  # the value moves to (or from) memory: gone
            _write_private(self.dir / f"{secret.uuid}.xml", secret.to_xml().encode())
            self.defs[secret.uuid] = secret
            return _ref(secret)

    def undefine(self, uuid: str) -> None:
        with self.lock:
            self.get(uuid)
            self._drop_value(uuid)
            (self.dir / f"{uuid}.xml").unlink(missing_ok=True)
            del self.defs[uuid]

    def xml(self, uuid: str) -> str:
        with self.lock:
            return self.get(uuid).to_xml()

    # --- values ---------------------------------------------------------------------
    def _drop_value(self, uuid: str) -> None:
        self._ephemeral.pop(uuid, None)
        (self.dir / f"{uuid}.value").unlink(missing_ok=True)

    def set_value(self, uuid: str, value: bytes) -> None:
        if len(value) > MAX_SECRET_BYTES:
            raise InvalidArgument(f"secret value larger than {MAX_SECRET_BYTES} bytes")
        with self.lock:
            xml = self.get(uuid)
            if xml.ephemeral:
                self._ephemeral[uuid] = bytes(value)
                return
            nonce = os.urandom(_NONCE)
            sealed = AESGCM(self._master_key()).encrypt(nonce, bytes(value), uuid.encode())
            _write_private(self.dir / f"{uuid}.value", nonce + sealed)

    def value(self, uuid: str) -> bytes:
        """The value for the driver's own use (private secrets included)."""
        with self.lock:
            xml = self.get(uuid)
            if xml.ephemeral:
                if uuid not in self._ephemeral:
                    raise NoSuchSecret(f"secret '{uuid}' does not have a value")
                return self._ephemeral[uuid]
            try:
                data = (self.dir / f"{uuid}.value").read_bytes()
            except FileNotFoundError:
                raise NoSuchSecret(f"secret '{uuid}' does not have a value") from None
            try:
                return AESGCM(self._master_key()).decrypt(data[:_NONCE], data[_NONCE:],
                                                          uuid.encode())
            except (InvalidTag, ValueError):
                raise OperationFailed(f"the stored value of secret '{uuid}' does not decrypt "
                                      "with this driver's master key") from None

    def public_value(self, uuid: str) -> bytes:
        """The value for an API caller: refused for a ``private`` secret."""
        with self.lock:
            if self.get(uuid).private:
                raise OperationInvalid(f"secret '{uuid}' is private: its value cannot be read")
            return self.value(uuid)

    def resolve(self, uuid: str | None, usage_type: str | None, usage: str | None) -> bytes:
        """The value a ``<secret uuid=...>`` or ``<secret usage=...>`` reference names."""
        with self.lock:
            if uuid:
                return self.value(uuid)
            for xml in self.defs.values():
                if usage and xml.usage_id == usage and (usage_type is None
                                                        or xml.usage_type == usage_type):
                    return self.value(xml.uuid)
        raise NoSuchSecret(f"secret not found: no secret with matching usage '{usage}'")


class SecretMixin:
    """The secret part of the Driver interface for :class:`QemuDriver`."""

    paths: QemuPaths
    _secret_store_obj: SecretStore | None = None

    @property
    def secret_store(self) -> SecretStore:
        if self._secret_store_obj is None:
            self._secret_store_obj = SecretStore(secrets_dir(self.paths))
        return self._secret_store_obj

    def list_secrets(self) -> list[SecretRef]:
        return self.secret_store.refs()

    def lookup_secret(self, by: str, value: str, usage_type: str | None = None) -> SecretRef:
        return self.secret_store.lookup(by, value, usage_type)

    def define_secret(self, xml: str) -> SecretRef:
        return self.secret_store.define(xml)

    def secret_xml(self, uuid: str) -> str:
        return self.secret_store.xml(uuid)

    def secret_set_value(self, uuid: str, value: bytes) -> None:
        self.secret_store.set_value(uuid, value)

    def secret_get_value(self, uuid: str) -> bytes:
        return self.secret_store.public_value(uuid)

    def secret_undefine(self, uuid: str) -> None:
        self.secret_store.undefine(uuid)
