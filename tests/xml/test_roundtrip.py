"""Every libvirt compat document: parse, validate, model, serialise, reparse, compare."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lxml import etree

from hvmon.core.xml import defaults
from hvmon.core.xml.base import XmlObject
from hvmon.core.xml.compare import lost_in, semantic_diff
from hvmon.core.xml.domain import Domain
from hvmon.core.xml.network import Network
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.pool import Pool
from hvmon.core.xml.schema import validate
from hvmon.core.xml.secret import Secret
from hvmon.core.xml.volume import Volume

COMPAT = Path(__file__).resolve().parents[3] / "shared" / "compat" / "libvirt-xml"
MODELS: dict[str, type[XmlObject] | None] = {
    "domain": Domain, "network": Network, "pool": Pool, "volume": Volume, "secret": Secret,
    "nwfilter": None,
}
FILES = sorted((kind, path) for kind in MODELS for path in (COMPAT / kind).glob("*.xml"))

pytestmark = pytest.mark.skipif(not COMPAT.is_dir(), reason="compat corpus not available")


def _ids(item: tuple[str, Path]) -> str:
    return f"{item[0]}/{item[1].name}"


def test_corpus_is_complete() -> None:
    counts = {kind: sum(1 for k, _ in FILES if k == kind) for kind in MODELS}
    assert counts == {"domain": 44, "network": 12, "pool": 11, "volume": 8, "secret": 6,
                      "nwfilter": 6}


@pytest.mark.parametrize("item", FILES, ids=_ids)
def test_compat_file_validates_and_round_trips(item: tuple[str, Path]) -> None:
    kind, path = item
    root = parse_xml(path.read_bytes(), what=f"{kind} XML")
    validate(root, kind)
    model = MODELS[kind]
    text = model(root).to_xml() if model else etree.tostring(root, encoding="unicode")
    again = parse_xml(text)
    assert semantic_diff(root, again) == []
    validate(again, kind)


@pytest.mark.parametrize("item", [f for f in FILES if f[0] == "domain"], ids=_ids)
def test_domain_identity(item: tuple[str, Path]) -> None:
    root = parse_xml(item[1].read_bytes())
    dom = Domain(root)
    assert dom.name == root.findtext("name")
    assert dom.uuid == root.findtext("uuid")
    assert dom.type == root.get("type")
    disks = root.findall("devices/disk")
    assert [d.target_dev for d in dom.disks] == [d.find("target").get("dev") for d in disks]
    for disk, el in zip(dom.disks, disks, strict=True):
        src = el.find("source")
        if src is not None and src.get("file"):
            assert disk.source_path == src.get("file")
    ifaces = root.findall("devices/interface")
    assert [i.mac for i in dom.interfaces] == [
        (el.find("mac").get("address") if el.find("mac") is not None else None) for el in ifaces
    ]
    assert [i.model for i in dom.interfaces] == [
        (el.find("model").get("type") if el.find("model") is not None else None) for el in ifaces
    ]
    # PCI addresses survive the model's round trip attribute for attribute
    again = parse_xml(dom.to_xml())
    before = [dict(a.attrib) for a in root.iter("address")]
    assert before == [dict(a.attrib) for a in again.iter("address")]


def test_known_values() -> None:
    dom = Domain(parse_xml((COMPAT / "domain/x86_64-pc-minimal.x86_64-latest.xml").read_bytes()))
    assert (dom.name, dom.uuid, dom.type) == ("guest", "1ccfd97d-5eb4-478a-bbe6-88d254c16db7",
                                              "qemu")
    assert (dom.memory_kib, dom.current_memory_kib, dom.vcpus) == (4194304, 4194304, 4)
    assert (dom.os_type, dom.arch, dom.machine) == ("hvm", "x86_64", "pc")

    net = Domain(parse_xml((COMPAT / "domain/net-virtio.x86_64-latest.xml").read_bytes()))
    assert [(i.type, i.mac, i.model) for i in net.interfaces] == [
        ("user", "00:11:22:33:44:55", "virtio")]

    rbd = Domain(parse_xml((COMPAT / "domain/disk-network-rbd.x86_64-latest.xml").read_bytes()))
    assert rbd.disks[0].source_path == "rbd://pool/image"
    assert rbd.disks[0].target_dev == "vda"

    hostdev = parse_xml((COMPAT / "domain/hostdev-pci-address.x86_64-latest.xml").read_bytes())
    addr = Domain(hostdev).copy().find("devices/hostdev/source/address")
    assert addr is not None and dict(addr.attrib) == {
        "domain": "0x0000", "bus": "0x06", "slot": "0x12", "function": "0x5"}

    pool = Pool(parse_xml((COMPAT / "pool/pool-iscsi-direct.xml").read_bytes()))
    assert pool.type == "iscsi-direct" and pool.source_iqn == "iqn.2013-06.com.example:iscsi-pool"
    assert [h.name for h in pool.source_hosts] == ["iscsi.example.com"]
    assert pool.initiator_iqn == "iqn.2013-06.com.example:iscsi-initiator"

    vol = Volume(parse_xml((COMPAT / "volume/vol-qcow2.xml").read_bytes()))
    assert (vol.capacity, vol.allocation, vol.target_format) == (5 * 1024**3, 294912, "qcow2")

    nat = Network(parse_xml((COMPAT / "network/nat-network.xml").read_bytes()))
    assert (nat.bridge, nat.forward_mode) == ("virbr0", "nat")
    ip = nat.ips[0]
    assert (ip.address, ip.netmask, ip.family) == ("192.168.122.1", "255.255.255.0", "ipv4")
    assert [(r.start, r.end) for r in ip.dhcp_ranges] == [("192.168.122.2", "192.168.122.254")]
    assert [h.mac for h in ip.dhcp_hosts] == ["00:16:3e:77:e2:ed", "00:16:3e:3e:a9:1a"]

    secret = Secret(parse_xml((COMPAT / "secret/usage-vtpm.xml").read_bytes()))
    assert (secret.usage_type, secret.usage_id, secret.private, secret.ephemeral) == (
        "vtpm", "vTPMvTPMvTPM", True, False)


def _fill(kind: str, obj: XmlObject) -> None:
    rng = random.Random(0)
    if isinstance(obj, Domain):
        defaults.fill_domain(obj, rng, set())
    elif isinstance(obj, Network):
        defaults.fill_network(obj, rng, set())
    elif isinstance(obj, Pool):
        defaults.fill_pool(obj, rng)
    elif isinstance(obj, Secret):
        defaults.fill_secret(obj, rng)
    elif isinstance(obj, Volume):
        defaults.fill_volume(obj, "/pool")


@pytest.mark.parametrize("item", [f for f in FILES if f[0] != "nwfilter"], ids=_ids)
def test_defaults_only_add(item: tuple[str, Path]) -> None:
    kind, path = item
    original = parse_xml(path.read_bytes())
    model = MODELS[kind]
    assert model is not None
    obj = model(parse_xml(path.read_bytes()))
    _fill(kind, obj)
    assert lost_in(original, obj.element) == []
    validate(obj.element, kind)
    if kind in ("domain", "network", "pool", "secret"):
        assert obj.uuid == (original.findtext("uuid") or obj.uuid)  # type: ignore[attr-defined]


METADATA = """<domain type='kvm'>
  <name>meta</name>
  <metadata>
    <app:config xmlns:app="http://example.com/app/1" app:role="web">
      <app:tier level="2">front</app:tier>
    </app:config>
  </metadata>
  <memory>1024</memory>
</domain>"""


def test_metadata_with_foreign_namespace_survives() -> None:
    dom = Domain.from_xml(METADATA)
    validate(dom.element, "domain")
    defaults.fill_domain(dom, random.Random(1))
    again = parse_xml(dom.to_xml())
    tier = again.find("metadata/{http://example.com/app/1}config/{http://example.com/app/1}tier")
    assert tier is not None and tier.text == "front" and tier.get("level") == "2"
    config = again.find("metadata/{http://example.com/app/1}config")
    assert config.get("{http://example.com/app/1}role") == "web"
    assert lost_in(Domain.from_xml(METADATA).element, again) == []


def test_property_set_and_unset() -> None:
    dom = Domain.from_xml("<domain type='kvm'><name>a</name><memory>1</memory></domain>")
    dom.title = "Front end"
    dom.arch = "aarch64"
    assert dom.find("title").text == "Front end"
    assert dom.find("os/type").get("arch") == "aarch64"
    dom.arch = None
    assert dom.find("os") is None  # emptied elements on the path are pruned
    dom.title = None
    assert dom.find("title") is None
    dom.memory_kib = 2048
    assert dom.find("memory").text == "2048" and dom.find("memory").get("unit") == "KiB"
    validate(dom.element, "domain")


def test_semantic_diff_reports_changes() -> None:
    a = etree.fromstring("<a x='1'><b>t</b><!-- c --><c/></a>")
    same = etree.fromstring("<a x='1'>\n  <b> t </b>\n  <c/>\n</a>")
    assert semantic_diff(a, same) == []
    changed = etree.fromstring("<a x='2'><c/><b>u</b><d/></a>")
    assert semantic_diff(a, changed) == [
        "/a/@x: '1' != '2'",
        "/a/b: element <b> != <c>",
        "/a/c: element <c> != <b>",
        "/a/d: only in the second document",
    ]


def test_lost_in_reports_drops_and_changes() -> None:
    orig = etree.fromstring("<a><b k='v'>t</b><c/></a>")
    assert lost_in(orig, etree.fromstring("<a><n/><b k='v' z='1'>t</b><c/><m/></a>")) == []
    assert lost_in(orig, etree.fromstring("<a><b k='w'>t</b></a>")) == [
        "/a/b/@k: 'v' became 'w'", "/a/c: missing or moved"]
