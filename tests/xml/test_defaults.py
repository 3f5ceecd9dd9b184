"""Defaults filled on define, and the golden files that pin them down.

``HVMON_REGEN_GOLDEN=1 .venv/bin/pytest tests/xml`` rewrites the ``-out`` files.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from hvmon.core.xml import defaults
from hvmon.core.xml.base import XmlObject
from hvmon.core.xml.compare import lost_in
from hvmon.core.xml.domain import Domain
from hvmon.core.xml.network import Network
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.patterns import is_uuid
from hvmon.core.xml.pool import Pool
from hvmon.core.xml.schema import validate
from hvmon.core.xml.secret import Secret
from hvmon.core.xml.volume import Volume

DATA = Path(__file__).resolve().parents[1] / "data" / "xml"
GOLDEN_INPUTS = sorted(DATA.glob("*-in.xml"))
KIND_OF = {"domain": "domain", "network": "network", "pool": "pool", "volume": "volume",
           "secret": "secret"}


def apply_defaults(text: str) -> tuple[XmlObject, str]:
    """The golden recipe: the right model, ``fill_*`` with ``random.Random(0)``."""
    root = parse_xml(text)
    rng = random.Random(0)
    obj: XmlObject
    if root.tag == "domain":
        obj = Domain(root)
        defaults.fill_domain(obj, rng, set())
    elif root.tag == "network":
        obj = Network(root)
        defaults.fill_network(obj, rng, {"virbr0"})
    elif root.tag == "pool":
        obj = Pool(root)
        defaults.fill_pool(obj, rng)
    elif root.tag == "volume":
        obj = Volume(root)
        defaults.fill_volume(obj, "/var/lib/images")
    else:
        obj = Secret(root)
        defaults.fill_secret(obj, rng)
    return obj, root.tag


def test_there_are_goldens() -> None:
    tags = {parse_xml(p.read_bytes()).tag for p in GOLDEN_INPUTS}
    assert tags == {"domain", "network", "pool", "volume", "secret"}


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    text = path.read_text()
    obj, tag = apply_defaults(text)
    out = obj.to_xml()
    golden = path.with_name(path.name.replace("-in.xml", "-out.xml"))
    if os.environ.get("HVMON_REGEN_GOLDEN") == "1":
        golden.write_text(out)
    validate(parse_xml(text), KIND_OF[tag])
    validate(parse_xml(out), KIND_OF[tag])
    assert lost_in(parse_xml(text), parse_xml(out)) == []
    assert golden.exists(), f"run HVMON_REGEN_GOLDEN=1 to create {golden.name}"
    assert out == golden.read_text()


MINIMAL = (DATA / "domain-minimal-in.xml").read_text()


def test_domain_defaults_values() -> None:
    dom = Domain.from_xml(MINIMAL)
    used = {"52:54:00:aa:bb:cc"}
    defaults.fill_domain(dom, random.Random(0), used)
    assert is_uuid(dom.uuid)
    assert dom.current_memory_kib == dom.memory_kib == 512 * 1024
    assert dom.find("currentMemory").get("unit") == "MiB"
    assert dom.os_type == "hvm" and dom.find("os/type").text == "hvm"
    assert [(d.target_dev, d.target_bus) for d in dom.disks] == [
        ("vdb", "virtio"), ("vda", "virtio"), ("sda", "sata")]
    macs = [i.mac for i in dom.interfaces]
    assert macs[1] == "52:54:00:12:34:56"
    assert macs[0].startswith("52:54:00:") and macs[0] not in {macs[1], "52:54:00:aa:bb:cc"}
    assert macs[0] in used  # the caller's set learns the new address
    # order of the user's elements is kept; new ones sit where libvirt puts them
    assert [c.tag for c in dom.element] == ["name", "uuid", "memory", "currentMemory", "vcpu",
                                           "os", "devices"]


def test_domain_defaults_are_deterministic() -> None:
    a, b = Domain.from_xml(MINIMAL), Domain.from_xml(MINIMAL)
    defaults.fill_domain(a, random.Random(7))
    defaults.fill_domain(b, random.Random(7))
    assert a.to_xml() == b.to_xml()
    c = Domain.from_xml(MINIMAL)
    defaults.fill_domain(c, random.Random(8))
    assert c.uuid != a.uuid


def test_domain_defaults_without_rng_are_random() -> None:
    a, b = Domain.from_xml(MINIMAL), Domain.from_xml(MINIMAL)
    defaults.fill_domain(a)
    defaults.fill_domain(b)
    assert is_uuid(a.uuid) and a.uuid != b.uuid


def test_mac_avoids_used_addresses() -> None:
    rng = random.Random(0)
    first = defaults.new_mac(random.Random(0))
    assert defaults.new_mac(rng, {first.upper()}) != first


def test_disk_names() -> None:
    assert [defaults.disk_name("vd", i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "vda", "vdb", "vdz", "vdaa", "vdab", "vdzz", "vdaaa"]
    dom = Domain.from_xml(
        "<domain type='kvm'><name>d</name><devices>"
        "<disk device='disk'><target dev='hda' bus='ide'/></disk>"
        "<disk device='disk'><target bus='ide'/></disk>"
        "<disk device='floppy'/>"
        "<disk device='lun'><target bus='scsi'/></disk>"
        "<disk device='disk'><target bus='usb'/></disk>"
        "</devices></domain>")
    defaults.fill_domain(dom, random.Random(0))
    assert [d.target_dev for d in dom.disks] == ["hda", "hdb", "fda", "sda", "sdb"]


def test_existing_os_without_type() -> None:
    dom = Domain.from_xml("<domain type='kvm'><name>d</name><os><boot dev='hd'/></os></domain>")
    defaults.fill_domain(dom, random.Random(0))
    assert [c.tag for c in dom.find("os")] == ["type", "boot"]


def test_network_bridges() -> None:
    used = {"virbr0", "virbr1"}
    net = Network.from_xml((DATA / "network-nobridge-in.xml").read_text())
    defaults.fill_network(net, random.Random(0), used)
    assert net.bridge == "virbr2" and "virbr2" in used
    assert net.mac.startswith("52:54:00:") and is_uuid(net.uuid)
    bridged = Network.from_xml(
        "<network><name>b</name><forward mode='bridge'/><bridge name='br0'/></network>")
    defaults.fill_network(bridged, random.Random(0), used)
    assert bridged.bridge == "br0" and bridged.mac is None
    isolated = Network.from_xml("<network><name>i</name></network>")
    defaults.fill_network(isolated, random.Random(0), used)
    assert isolated.bridge == "virbr3"


def test_pool_secret_volume() -> None:
    pool = Pool.from_xml((DATA / "pool-dir-in.xml").read_text())
    defaults.fill_pool(pool, random.Random(0))
    assert is_uuid(pool.uuid) and pool.capacity == 100 * 1024**3
    secret = Secret.from_xml((DATA / "secret-ceph-in.xml").read_text())
    defaults.fill_secret(secret, random.Random(0))
    assert is_uuid(secret.uuid) and secret.usage_id == "client.admin secret"
    assert secret.element[0].tag == "uuid"
    vol = Volume.from_xml((DATA / "volume-units-in.xml").read_text())
    defaults.fill_volume(vol, "/var/lib/images/")
    assert vol.capacity == vol.allocation == 20 * 1024**3
    assert vol.target_path == vol.key == "/var/lib/images/disk1.qcow2"
    assert vol.target_format == "qcow2"


def test_existing_values_are_kept() -> None:
    text = ("<domain type='kvm'><name>k</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
            "<memory>10</memory><currentMemory>5</currentMemory><os><type>linux</type></os>"
            "</domain>")
    dom = Domain.from_xml(text)
    defaults.fill_domain(dom, random.Random(0))
    assert dom.to_xml() == Domain.from_xml(text).to_xml()
