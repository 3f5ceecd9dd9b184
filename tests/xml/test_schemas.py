"""Schemas: they compile, accept hvmon's documents and refuse bad values readably."""

from __future__ import annotations

import pytest
from lxml import etree

from hvmon.core.errors import InvalidArgument, InvalidXML
from hvmon.core.xml.capabilities import GuestArch, HostFacts, build_capabilities
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.schema import KINDS, quick_check, schema_path, validate

DOMAIN = """<domain type='kvm'>
  <name>web1</name>
  <uuid>1ccfd97d-5eb4-478a-bbe6-88d254c16db7</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/img/web1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:00:00:01'/>
      <source network='default'/>
    </interface>
  </devices>
</domain>"""


def test_every_schema_compiles() -> None:
    for kind in KINDS:
        assert schema_path(kind).is_file()
        etree.RelaxNG(file=str(schema_path(kind)))


def test_unknown_kind() -> None:
    with pytest.raises(InvalidArgument, match="unknown XML kind 'bogus'"):
        validate(parse_xml(DOMAIN), "bogus")


def test_good_domain_passes() -> None:
    validate(parse_xml(DOMAIN), "domain")
    quick_check(parse_xml(DOMAIN), "domain")


BAD_DOMAINS = [
    ("<uuid>1ccfd97d-5eb4-478a-bbe6-88d254c16db7</uuid>", "<uuid>not-a-uuid</uuid>",
     "at line 3: invalid UUID 'not-a-uuid' in <uuid>"),
    ("<memory unit='KiB'>1048576</memory>", "<memory unit='KiB'>lots</memory>",
     "at line 4: invalid size 'lots' in <memory>"),
    ("<memory unit='KiB'>1048576</memory>", "<memory unit='parsec'>1</memory>",
     "at line 4: unknown unit 'parsec' in <memory unit>"),
    ("<vcpu>2</vcpu>", "<vcpu>0</vcpu>", "at line 5: invalid vCPU count '0' in <vcpu>"),
    (">hvm<", ">dos<", "at line 6: invalid OS type 'dos' in <type>"),
    ("<on_crash>destroy</on_crash>", "<on_crash>explode</on_crash>",
     "at line 7: invalid lifecycle action 'explode' in <on_crash>"),
    ("bus='virtio'/>", "bus='floppy'/>", "at line 11: invalid disk bus 'floppy' in <target bus>"),
    ("slot='0x04'", "slot='0x100'", "at line 12: invalid PCI slot '0x100' in <address slot>"),
    ("52:54:00:00:00:01", "52:54:00:00:01", "at line 15: invalid MAC address '52:54:00:00:01'"),
    ("<domain type='kvm'>", "<domain type='vmx'>", "at line 1: invalid domain type 'vmx'"),
    ("<domain type='kvm'>", "<domain>", "at line 1: missing attribute 'type' on <domain>"),
    ("<name>web1</name>", "", "at line 1: missing <name> element in <domain>"),
    ("<name>web1</name>", "<name>a/b</name>", "at line 2: invalid name 'a/b' in <name>"),
    ("<vcpu>2</vcpu>", "<metadata><plain/></metadata>",
     "at line 5: element <metadata> in <domain> does not match the schema"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_DOMAINS)
def test_bad_domain_values(old: str, new: str, message: str) -> None:
    assert old in DOMAIN
    with pytest.raises(InvalidXML) as info:
        validate(parse_xml(DOMAIN.replace(old, new, 1)), "domain")
    text = str(info.value)
    assert text.startswith("XML error in domain XML ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("network", "<network><name>n</name><forward mode='tunnel'/></network>",
     "invalid forward mode 'tunnel'"),
    ("network", "<network><name>n</name><mac address='zz'/></network>", "invalid MAC address"),
    ("network", "<network><name>n</name><ip address='10.0.0.1' prefix='200'/></network>",
     "invalid prefix '200'"),
    ("pool", "<pool type='tape'><name>p</name></pool>", "invalid pool type 'tape'"),
    ("pool", "<pool type='dir'><name>p</name><capacity unit='G'>-1</capacity></pool>",
     "invalid size '-1' in <capacity>"),
    ("pool", "<pool type='dir'><target/></pool>", "missing <name> element"),
    ("volume", "<volume><name>v</name><allocation unit='Q'>1</allocation></volume>",
     "unknown unit 'Q'"),
    ("secret", "<secret><usage type='ssh'><name>x</name></usage></secret>",
     "invalid usage type 'ssh'"),
    ("secret", "<secret ephemeral='maybe'/>", "invalid value 'maybe'"),
    ("nwfilter", "<filter name='f'><rule action='allow' direction='in'/></filter>",
     "invalid rule action 'allow'"),
    ("domain", "<network><name>n</name></network>", "expected <domain> root element"),
])
def test_bad_values_other_kinds(kind: str, text: str, message: str) -> None:
    with pytest.raises(InvalidXML, match=message):
        validate(parse_xml(text), kind)


@pytest.mark.parametrize(("pool_type"), ["dir", "fs", "netfs", "logical", "disk", "iscsi",
                                         "iscsi-direct", "scsi", "mpath", "rbd", "gluster",
                                         "zfs", "vstorage"])
def test_pool_types(pool_type: str) -> None:
    validate(parse_xml(f"<pool type='{pool_type}'><name>p</name></pool>"), "pool")


@pytest.mark.parametrize("mode", ["nat", "route", "open", "bridge", "private", "vepa",
                                  "passthrough", "hostdev"])
def test_forward_modes(mode: str) -> None:
    validate(parse_xml(f"<network><name>n</name><forward mode='{mode}'/></network>"), "network")


def test_open_parts_accept_unknown_content() -> None:
    text = DOMAIN.replace("<devices>", "<devices><future attr='1'><x/></future>").replace(
        "<vcpu>2</vcpu>", "<vcpu>2</vcpu><newfeature a='b'>text</newfeature>")
    validate(parse_xml(text), "domain")


NODE = """<node xmlns:hv="urn:hvmon:test:1">
  <cpu><mhz>1400</mhz><model>i686</model><active>16</active><nodes>2</nodes>
    <sockets>2</sockets><cores>2</cores><threads>2</threads></cpu>
  <memory>3145728</memory>
  <hv:controls clock="manual"/>
  <domain file="dom.xml"/>
  DOMAIN
  <network><name>default</name><bridge name="virbr0"/></network>
  <pool type="dir"><name>p</name><target><path>/p</path></target>
    <volume><name>v</name><capacity unit="G">1</capacity></volume>
    <volume file="v.xml"/>
  </pool>
  <pool file="pool.xml"><volume file="v2.xml"/></pool>
  <secret><usage type="volume"><volume>/p/v</volume></usage></secret>
</node>"""


def test_node_document() -> None:
    node = parse_xml(NODE.replace("DOMAIN", DOMAIN))
    validate(node, "node")
    quick_check(node, "node")


def test_node_checks_nested_objects() -> None:
    bad = NODE.replace("DOMAIN", DOMAIN.replace("88d254c16db7", "xyz"))
    with pytest.raises(InvalidXML, match=r"node XML at line 9: invalid UUID"):
        validate(parse_xml(bad), "node")
    with pytest.raises(InvalidXML, match=r"node XML at line 9: invalid UUID"):
        quick_check(parse_xml(bad), "node")
    bad_volume = NODE.replace("DOMAIN", "").replace(">1</capacity>", ">x</capacity>")
    with pytest.raises(InvalidXML, match="invalid size 'x' in <capacity>"):
        quick_check(parse_xml(bad_volume), "node")
    with pytest.raises(InvalidXML, match="node XML at line 7: .*extra content: plain"):
        validate(parse_xml(NODE.replace("DOMAIN", "<plain/>")), "node")


def _big_node(count: int) -> str:
    one = DOMAIN.replace("<uuid>1ccfd97d-5eb4-478a-bbe6-88d254c16db7</uuid>", "")
    parts = [one.replace("web1", f"web{i}").replace("00:00:01", f"00:{i >> 8 & 255:02x}:"
                                                                f"{i & 255:02x}")
             for i in range(count)]
    return "<node>\n" + "\n".join(parts) + "\n</node>"


def test_quick_check_finds_one_bad_domain_among_10000() -> None:
    text = _big_node(10_000)
    quick_check(parse_xml(text), "node")
    bad = text.replace("<name>web9876</name>", "<name>web9876</name><uuid>nope</uuid>")
    with pytest.raises(InvalidXML, match="invalid UUID 'nope'"):
        quick_check(parse_xml(bad), "node")


def test_quick_check_skips_deep_rules() -> None:
    text = DOMAIN.replace("<on_crash>destroy</on_crash>", "<on_crash>explode</on_crash>")
    quick_check(parse_xml(text), "domain")  # quick: identity, sizes, MACs only
    with pytest.raises(InvalidXML):
        validate(parse_xml(text), "domain")
    with pytest.raises(InvalidXML, match="expected <pool> root element, found <domain>"):
        quick_check(parse_xml(text), "pool")


HOST = HostFacts(uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", arch="i686", model="i686",
                 vendor="Intel", sockets=2, cores=2, threads=2, cells=2,
                 memory_kib=3 * 1024 * 1024, cpus=16)
GUESTS = [
    GuestArch("hvm", "x86_64", 64, "/usr/bin/qemu-system-x86_64",
              ["pc-i440fx-7.2", ("pc", "pc-i440fx-7.2"), "q35"], ["qemu", "kvm"]),
    GuestArch("hvm", "i686", 32, "/usr/bin/qemu-system-i386", ["pc"], ["qemu"]),
]


def test_capabilities_document() -> None:
    root = parse_xml(build_capabilities(HOST, GUESTS))
    validate(root, "capabilities")
    assert root.findtext("host/uuid") == HOST.uuid
    assert root.findtext("host/cpu/arch") == "i686"
    assert root.find("host/cpu/topology").attrib == {
        "sockets": "2", "dies": "1", "cores": "2", "threads": "2"}
    assert [t.text for t in root.iterfind("host/migration_features/uri_transports/*")] == ["tcp"]
    cells = root.findall("host/topology/cells/cell")
    assert [c.findtext("memory") for c in cells] == ["1572864", "1572864"]
    cpus = root.findall("host/topology/cells/cell/cpus/cpu")
    assert [c.get("id") for c in cpus] == [str(i) for i in range(16)]
    assert cpus[5].attrib == {"id": "5", "socket_id": "1", "die_id": "0", "core_id": "0",
                              "siblings": "4-5"}
    x86 = root.find("guest/arch[@name='x86_64']")
    assert [(m.text, m.get("canonical")) for m in x86.iterfind("machine")] == [
        ("pc-i440fx-7.2", None), ("pc", "pc-i440fx-7.2"), ("q35", None)]
    assert [d.get("type") for d in x86.iterfind("domain")] == ["qemu", "kvm"]
    assert root.findtext("guest[2]/arch/wordsize") == "32"


def test_capabilities_schema_refuses_bad_guest() -> None:
    text = build_capabilities(HOST, [GuestArch("hvm", "x86_64", 48, "/bin/q", ["pc"], ["qemu"])])
    with pytest.raises(InvalidXML, match="capabilities XML"):
        validate(parse_xml(text), "capabilities")
