"""The start hook for disks: pool volumes resolved, secrets handed to QEMU.

``prepare`` rewrites each ``<disk type='volume'><source pool= volume=>`` of
the live definition into what the volume is: a ``file`` (dir, fs, netfs
pools; the driver format and a LUKS ``<encryption>`` taken from the volume),
a ``block`` device (iscsi, logical) or an ``iscsi`` ``network`` source
(iscsi-direct: host, initiator IQN and CHAP ``<auth>`` from the pool). It
then writes the values of the secrets the disks need (LUKS passphrases,
CHAP passwords) to 0600 files in the domain's ``.secrets`` directory under
the 0700 run directory, which QEMU reads through ``secret`` objects
(:func:`hvmon.core.drivers.qemu.cmdline.secret_object`); ``release`` removes
them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from lxml import etree

from hvmon.core.drivers.qemu.cmdline import disk_luks_secret, secrets_dir
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.secrets import SecretStore
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.drivers.qemu.storage.backends.iscsidirect import portal_of
from hvmon.core.drivers.qemu.storage.model import PoolObj, Vol
from hvmon.core.drivers.qemu.storage.pools import PoolTable
from hvmon.core.errors import InvalidArgument, NoSuchPool, NoSuchVolume, OperationInvalid
from hvmon.core.types import VolumeType
from hvmon.core.xml.domain import Domain as DomainXML

log = logging.getLogger("hvmon.qemu.storage")


def _alias(disk: etree._Element) -> str:
    alias = disk.find("alias")
    return alias.get("name", "") if alias is not None else ""


def _write_secret(directory: Path, name: str, value: bytes) -> None:
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(value)


class DiskHook:
    """Resolves volume disks and provides disk secrets around a guest's life."""

    def __init__(self, paths: QemuPaths, pools: PoolTable, secrets: SecretStore) -> None:
        self.paths = paths
        self.pools = pools
        self.secrets = secrets

    # --- volumes ----------------------------------------------------------------------
    def _lookup(self, disk: etree._Element) -> tuple[PoolObj, Vol]:
        source = disk.find("source")
        pool_name = source.get("pool", "") if source is not None else ""
        vol_name = source.get("volume", "") if source is not None else ""
        if not pool_name or not vol_name:
            raise InvalidArgument("a <disk type='volume'> needs <source pool='...' "
                                  "volume='...'/>")
        with self.pools.lock:
            try:
                obj = self.pools.by_name(pool_name)
            except NoSuchPool:
                raise NoSuchPool(f"storage pool '{pool_name}' of a volume disk does not "
                                 "exist") from None
            if not obj.active:
                raise OperationInvalid(f"storage pool '{pool_name}' containing volume "
                                       f"'{vol_name}' is not active")
            vol = obj.volumes.get(vol_name)
            if vol is None:
                raise NoSuchVolume(f"storage volume '{vol_name}' not found in pool "
                                   f"'{pool_name}'")
            return obj, vol

    def resolve(self, disk: etree._Element) -> None:
        """Rewrite one volume disk into its file, block or network form."""
        obj, vol = self._lookup(disk)
        old = disk.find("source")
        assert old is not None
        source = etree.Element("source")
        source.tail = old.tail
        for child in old:  # keep <seclabel>, <reservations>, ...
            source.append(child)
        if vol.type == VolumeType.NETWORK:
            disk.set("type", "network")
            pool = obj.live
            source.set("protocol", "iscsi")
            source.set("name", f"{pool.source_iqn}/{vol.name.rsplit(':', 1)[1]}")
            host, _, port = portal_of(pool).rpartition(":")
            etree.SubElement(source, "host", name=host, port=port)
            if pool.initiator_iqn:
                init = etree.SubElement(source, "initiator")
                etree.SubElement(init, "iqn", name=pool.initiator_iqn)
            auth = pool.find("source/auth")
            if auth is not None:
                copy = etree.SubElement(source, "auth", username=auth.get("username", ""))
                secret = auth.find("secret")
                if secret is not None:
                    ref = etree.SubElement(copy, "secret", type="iscsi")
                    for attr in ("uuid", "usage"):
                        if secret.get(attr):
                            ref.set(attr, secret.get(attr, ""))
        elif vol.type == VolumeType.BLOCK:
            disk.set("type", "block")
            source.set("dev", vol.path)
        else:
            disk.set("type", "file")
            source.set("file", vol.path)
        old.getparent().replace(old, source)
        driver = disk.find("driver")
        if driver is None:
            driver = etree.Element("driver", name="qemu")
            disk.insert(0, driver)
        if not driver.get("type"):
            driver.set("type", vol.format if vol.format in ("raw", "qcow2") else "raw")
        if vol.secret and disk_luks_secret(disk, "disk") is None:
            enc = etree.SubElement(source, "encryption", format="luks")
            etree.SubElement(enc, "secret", type="passphrase", uuid=vol.secret)

    # --- secrets ----------------------------------------------------------------------
    def _auth_value(self, disk: etree._Element) -> bytes | None:
        secret = disk.find("source/auth/secret")
        if disk.get("type") != "network" or disk.find("source/auth") is None:
            return None
        if secret is None:
            raise InvalidArgument("an iscsi <auth> needs <secret uuid|usage>")
        return self.secrets.resolve(secret.get("uuid"), secret.get("type") or None,
                                    secret.get("usage"))

    def prepare(self, dom: QemuDomain, live: DomainXML) -> None:
        disks = live.element.findall("devices/disk")
        for disk in disks:
            if disk.get("type") == "volume":
                self.resolve(disk)
        directory = secrets_dir(self.paths.monitor(dom.name))
        shutil.rmtree(directory, ignore_errors=True)
        for disk in disks:
            label = f"disk '{_alias(disk)}'"
            luks = disk_luks_secret(disk, label)
            auth = self._auth_value(disk)
            if luks is None and auth is None:
                continue
            directory.mkdir(mode=0o700, exist_ok=True)
            if luks is not None:
                _write_secret(directory, f"{_alias(disk)}-luks-secret0", self.secrets.value(luks))
            if auth is not None:
                _write_secret(directory, f"{_alias(disk)}-auth-secret0", auth)

    def release(self, dom: QemuDomain, live: DomainXML) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(secrets_dir(self.paths.monitor(dom.name)))
