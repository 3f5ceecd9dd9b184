"""The QEMU driver's Secret store: values encrypted at rest, 0600 files, never in XML."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hvmon.core.errors import (
    AccessDenied,
    AlreadyExists,
    HvmonError,
    InvalidArgument,
    NoSuchSecret,
    OperationFailed,
    OperationInvalid,
)

VALUE = b"s3cr3t-passphrase-for-tests"


def secret_xml(usage: str, private: str = "no", ephemeral: str = "no") -> str:
    return (f"<secret ephemeral='{ephemeral}' private='{private}'><description>t</description>"
            f"<usage type='volume'><volume>{usage}</volume></usage></secret>")


def all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def test_define_set_get_and_files_at_rest(open_qemu, qemu_root: Path) -> None:
    conn = open_qemu()
    sec = conn.define_secret_xml(secret_xml("/var/lib/a.img"))
    with pytest.raises(NoSuchSecret, match="does not have a value"):
        sec.get_value()
    sec.set_value(VALUE)
    assert sec.get_value() == VALUE
    assert VALUE.decode() not in sec.xml_desc()
    assert conn.lookup_secret_by_usage("volume", "/var/lib/a.img").uuid == sec.uuid
    directory = qemu_root / "etc/secrets"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (directory / "master.key").stat().st_size == 32
    for path, data in all_bytes(qemu_root):
        assert VALUE not in data, f"the value is in clear in {path}"
    with pytest.raises(AlreadyExists, match="already defined"):
        conn.define_secret_xml(secret_xml("/var/lib/a.img"))
    with pytest.raises(InvalidArgument, match="larger than"):
        sec.set_value(b"x" * (64 * 1024 + 1))
    conn.close()
    again = open_qemu()  # a new driver decrypts with the same master key
    assert again.lookup_secret_by_uuid(sec.uuid).get_value() == VALUE


def test_tampered_or_moved_value_does_not_decrypt(open_qemu, qemu_root: Path) -> None:
    conn = open_qemu()
    one = conn.define_secret_xml(secret_xml("/one"))
    two = conn.define_secret_xml(secret_xml("/two"))
    one.set_value(VALUE)
    two.set_value(b"other")
    directory = qemu_root / "etc/secrets"
    (directory / f"{two.uuid}.value").write_bytes((directory / f"{one.uuid}.value").read_bytes())
    with pytest.raises(OperationFailed, match="does not decrypt"):
        two.get_value()


def test_private_ephemeral_and_read_only(open_qemu, qemu_root: Path) -> None:
    conn = open_qemu()
    private = conn.define_secret_xml(secret_xml("/p", private="yes"))
    private.set_value(VALUE)
    with pytest.raises(OperationInvalid, match="private"):
        private.get_value()
    ephemeral = conn.define_secret_xml(secret_xml("/e", ephemeral="yes"))
    ephemeral.set_value(VALUE)
    assert ephemeral.get_value() == VALUE
    assert not (qemu_root / f"etc/secrets/{ephemeral.uuid}.value").exists()
    plain = conn.define_secret_xml(secret_xml("/r"))
    plain.set_value(VALUE)
    ro = open_qemu(readonly=True)
    with pytest.raises((AccessDenied, HvmonError), match="read.only|denied"):
        ro.lookup_secret_by_uuid(plain.uuid).get_value()
    plain.undefine()
    assert not list((qemu_root / "etc/secrets").glob(f"{plain.uuid}*"))
    with pytest.raises(NoSuchSecret):
        conn.lookup_secret_by_uuid(plain.uuid)
