"""The command-line pieces storage adds: iscsi:// network disks, secret objects, share-rw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from hvmon.core.drivers.qemu.addresses import assign_addresses
from hvmon.core.drivers.qemu.cmdline import (
    build_command,
    device_args_for_hotplug,
    network_source,
    secret_object,
    secrets_dir,
)
from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.domain import Domain

from .conftest import OLD_QEMU, QEMU_72, load_caps

MONITOR = Path("/run/hv/qemu/g.monitor")


def domain(disks: str) -> Domain:
    dom = Domain.from_xml(f"""<domain type='kvm'><name>g</name>
      <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
      <devices>{disks}</devices></domain>""")
    assign_addresses(dom, "pc-i440fx-7.2")
    return dom


ISCSI = """<disk type='network' device='disk'><driver name='qemu' type='raw'/>
  <source protocol='iscsi' name='iqn.2004-04.fedora:t/2'><host name='127.0.0.1' port='3261'/>
  <initiator><iqn name='iqn.2013-01.org.hvmon:h'/></initiator>
  <auth username='u'><secret type='iscsi' usage='t'/></auth></source>
  <target dev='vda' bus='virtio'/><shareable/></disk>"""
LUKS = """<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
  <source file='/img/enc.qcow2'><encryption format='luks'>
  <secret type='passphrase' uuid='0a52040c-8afd-413a-a662-be48c2d9904f'/></encryption></source>
  <target dev='vdb' bus='virtio'/></disk>"""


def _blockdevs(argv: list[str]) -> list[dict[str, object]]:
    return [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]


def test_iscsi_network_disk_with_chap_and_luks_file() -> None:
    argv = build_command(domain(ISCSI + LUKS), load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    directory = secrets_dir(MONITOR)
    assert directory == Path("/run/hv/qemu/g.secrets")
    objects = [argv[i + 1] for i, a in enumerate(argv) if a == "-object"]
    assert f"secret,id=virtio-disk0-auth-secret0,file={directory}/virtio-disk0-auth-secret0," \
           "format=raw" in objects
    assert f"secret,id=virtio-disk1-luks-secret0,file={directory}/virtio-disk1-luks-secret0," \
           "format=raw" in objects
    nodes = _blockdevs(argv)
    assert nodes[0] == {"driver": "iscsi", "transport": "tcp", "portal": "127.0.0.1:3261",
                        "target": "iqn.2004-04.fedora:t", "lun": 2,
                        "initiator-name": "iqn.2013-01.org.hvmon:h", "user": "u",
                        "password-secret": "virtio-disk0-auth-secret0",
                        "node-name": "libvirt-1-storage", "auto-read-only": True,
                        "discard": "unmap"}
    assert nodes[3]["encrypt"] == {"format": "luks", "key-secret": "virtio-disk1-luks-secret0"}
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert any("id=virtio-disk0" in d and "share-rw=on" in d for d in devices)
    assert not any("id=virtio-disk1" in d and "share-rw" in d for d in devices)


def test_raw_luks_uses_the_luks_driver() -> None:
    argv = build_command(domain(LUKS.replace("qcow2", "raw")), load_caps(QEMU_72),
                         monitor=MONITOR, accel="tcg")
    fmt = _blockdevs(argv)[1]
    assert fmt["driver"] == "luks" and fmt["key-secret"] == "virtio-disk1-luks-secret0"


@pytest.mark.parametrize(("source", "error", "message"), [
    ("<source protocol='iscsi' name='iqn.x'><host name='h'/></source>", InvalidArgument,
     "name='IQN/LUN'"),
    ("<source protocol='iscsi' name='iqn.x/1'/>", InvalidArgument, "<host name>"),
    ("<source protocol='nbd' name='x'/>", Unsupported, "protocol 'nbd'"),
])
def test_network_source_errors(source: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        network_source(etree.fromstring(source), "disk 'vda'", None, "virtio-disk0")


def test_secrets_are_refused_where_no_secret_directory_exists() -> None:
    dom = domain(ISCSI)
    disk = dom.element.find("devices/disk")
    etree.SubElement(disk, "alias", name="virtio-disk3")
    with pytest.raises(Unsupported, match="only .*at start"):
        device_args_for_hotplug(dom, disk, load_caps(QEMU_72), node_index=5)
    old = domain(LUKS)
    old.machine = "pc-i440fx-2.12"
    with pytest.raises(Unsupported, match="need -blockdev"):
        build_command(old, load_caps(OLD_QEMU), monitor=MONITOR, accel="tcg")
    assert secret_object("a", Path("/d")) == "secret,id=a,file=/d/a,format=raw"
