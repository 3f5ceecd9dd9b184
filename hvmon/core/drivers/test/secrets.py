"""Secrets in the test driver: values kept in memory, never in XML or logs."""

from __future__ import annotations

from hvmon.core.drivers.base import SecretRef
from hvmon.core.drivers.test.base import TestPart
from hvmon.core.drivers.test.state import SecretObj
from hvmon.core.errors import AlreadyExists, InvalidArgument, NoSuchSecret, OperationInvalid
from hvmon.core.xml import defaults, schema
from hvmon.core.xml.secret import Secret as SecretXML

MAX_SECRET_BYTES = 64 * 1024


def _ref(obj: SecretObj) -> SecretRef:
    return SecretRef(obj.uuid, obj.xml.usage_type or "none", obj.xml.usage_id)


class SecretOps(TestPart):
    """The secret part of the Driver interface."""

    def _secret(self, uuid: str) -> SecretObj:
        obj = self.state.secrets.get(uuid)
        if obj is None:
            raise NoSuchSecret(f"secret not found: no secret with matching uuid '{uuid}'")
        return obj

    def list_secrets(self) -> list[SecretRef]:
        with self._locked() as st:
            return [_ref(obj) for obj in st.secrets.values()]

    def lookup_secret(self, by: str, value: str, usage_type: str | None = None) -> SecretRef:
        with self._locked() as st:
            if by == "uuid":
                return _ref(self._secret(value))
            if by != "usage":
                raise InvalidArgument(f"cannot look up a secret by {by}")
            for obj in st.secrets.values():
                if obj.xml.usage_type == usage_type and obj.xml.usage_id == value:
                    return _ref(obj)
        raise NoSuchSecret(f"secret not found: no secret with matching usage '{value}'")

    def define_secret(self, xml: str) -> SecretRef:
        with self._locked() as st:
            secret = SecretXML.from_xml(xml)
            schema.validate(secret.element, "secret")
            defaults.fill_secret(secret, rng=st.rng)
            for obj in st.secrets.values():
                if obj.uuid != secret.uuid and secret.usage_type and \
                        obj.xml.usage_type == secret.usage_type and \
                        obj.xml.usage_id == secret.usage_id:
                    raise AlreadyExists(
                        f"a secret with UUID {obj.uuid} already defined for use with "
                        f"{secret.usage_id}"
                    )
            existing = st.secrets.get(secret.uuid)
            if existing is not None and (existing.xml.usage_type, existing.xml.usage_id) != (
                    secret.usage_type, secret.usage_id):
                raise AlreadyExists(
                    f"a secret with UUID {secret.uuid} is already defined for use with "
                    f"{existing.xml.usage_id or existing.xml.usage_type}"
                )
            if existing is None:
                existing = st.secrets[secret.uuid] = SecretObj(secret.uuid, secret)
            else:
                existing.xml = secret
            return _ref(existing)

    def secret_xml(self, uuid: str) -> str:
        with self._locked():
            return self._secret(uuid).xml.to_xml()

    def secret_set_value(self, uuid: str, value: bytes) -> None:
        if len(value) > MAX_SECRET_BYTES:
            raise InvalidArgument(f"secret value larger than {MAX_SECRET_BYTES} bytes")
        with self._locked():
            self._secret(uuid).value = bytes(value)

    def secret_get_value(self, uuid: str) -> bytes:
        with self._locked():
            obj = self._secret(uuid)
            if obj.xml.private:
                raise OperationInvalid(f"secret '{uuid}' is private: its value cannot be read")
            if obj.value is None:
                raise NoSuchSecret(f"secret '{uuid}' does not have a value")
            return obj.value

    def secret_undefine(self, uuid: str) -> None:
        with self._locked() as st:
            self._secret(uuid)
            del st.secrets[uuid]
