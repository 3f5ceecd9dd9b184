"""Network filters: the model, clean-traffic in nftables bound to a port, guests' filters.

Traffic tests run in namespaces made here: a NAT network in one, a client on a
veth pair in another (see test_networks.py for the fixtures and the rules).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from toolcheck import wait_for

import hvmon
from hvmon.core.drivers.qemu.networks.bindings import SHIPPED
from hvmon.core.drivers.qemu.networks.nftfilter import Translator, table_name
from hvmon.core.errors import (
    InvalidArgument,
    InvalidXML,
    NoSuchNWFilter,
    OperationFailed,
    OperationInvalid,
    Unsupported,
)
from hvmon.core.xml import schema
from hvmon.core.xml.nwfilter import Filter, FilterRef

from .conftest import guest_xml
from .test_networks import (  # noqa: F401  (fixtures)
    dhcp_client,
    in_ns,
    make_ns,
    nat_xml,
    net_conn,
    net_tools,
    ruleset,
    veth_client,
)

COMPAT = Path(__file__).resolve().parents[3] / "shared/compat/libvirt-xml/nwfilter"
GUEST_MAC = "52:54:00:12:34:56"


def binding_xml(port: str, mac: str, ip: str | None, flt: str = "clean-traffic") -> str:
    param = f"<parameter name='IP' value='{ip}'/>" if ip else ""
    return (f"<filterbinding><owner><name>g</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809"
            f"</uuid></owner><portdev name='{port}'/><mac address='{mac}'/>"
            f"<filterref filter='{flt}'>{param}</filterref></filterbinding>")


# --- the model (no host command) ----------------------------------------------------------


def _compat_files() -> list[Path]:
    return sorted(COMPAT.glob("*.xml")) if COMPAT.is_dir() else []


@pytest.mark.parametrize("path", _compat_files(), ids=lambda p: p.name)
def test_compat_filters_load_and_translate(path: Path) -> None:
    filt = Filter.from_xml(path.read_text())
    schema.validate(filt.element, "nwfilter")
    shipped = {p.stem: Filter.from_xml(p.read_text()) for p in SHIPPED.glob("*.xml")}
    shipped[filt.name or ""] = filt

    def lookup(name: str) -> Filter:
        if name not in shipped:
            raise NoSuchNWFilter(name)
        return shipped[name]

    ref = FilterRef.from_xml(f"<filterref filter='{filt.name}'/>")
    variables = {"MAC": [GUEST_MAC], "IP": ["10.0.0.5"]}
    if path.name == "conntrack-test.xml":  # connection limits are not translated: refused
        with pytest.raises(Unsupported, match="attribute 'connlimit-above'"):
            Translator(lookup).script("vnet0", ref, variables)
        return
    if path.name == "tcp-test.xml":  # its last rule has port 65536
        with pytest.raises(InvalidArgument, match="invalid port range 65535-65536"):
            Translator(lookup).script("vnet0", ref, variables)
        return
    script = Translator(lookup).script("vnet0", ref, variables)
    assert script.startswith(f"table bridge {table_name('vnet0')} {{")
    assert 'iifname != "vnet0" return' in script


def test_clean_traffic_shape() -> None:
    filters = {p.stem: Filter.from_xml(p.read_text()) for p in SHIPPED.glob("*.xml")}
    for filt in filters.values():
        schema.validate(filt.element, "nwfilter")
    ref = FilterRef.from_xml("<filterref filter='clean-traffic'/>")
    script = Translator(filters.__getitem__).script(
        "vnet0", ref, {"MAC": [GUEST_MAC], "IP": ["10.0.0.5", "10.0.0.6"]})
    assert f"ether saddr {GUEST_MAC} return" in script
    assert "ip saddr 10.0.0.5 return" in script and "ip saddr 10.0.0.6 return" in script
    assert "arp saddr ip 10.0.0.5 return" in script
    assert f"arp saddr ether {GUEST_MAC} return" in script
    # without an IP only DHCP passes the IP chain: the $IP rules wait
    learning = Translator(filters.__getitem__).script("vnet0", ref, {"MAC": [GUEST_MAC]})
    assert "ip saddr 0.0.0.0 ip protocol udp return" in learning
    assert "ip saddr 10." not in learning and "arp saddr ip" not in learning


def test_filter_references_loop_refused() -> None:
    filters = {"a": Filter.from_xml("<filter name='a'><filterref filter='b'/></filter>"),
               "b": Filter.from_xml("<filter name='b'><filterref filter='a'/></filter>")}
    ref = FilterRef.from_xml("<filterref filter='a'/>")
    with pytest.raises(InvalidArgument, match="references itself"):
        Translator(filters.__getitem__).script("vnet0", ref, {})


def test_define_list_undefine_filters(open_qemu: Callable[..., hvmon.Connection]) -> None:
    drv = open_qemu()._driver
    names = drv.nwfilter_list()
    assert {"clean-traffic", "no-ip-spoofing", "no-mac-spoofing", "no-arp-spoofing"} <= \
        set(names)
    for path in _compat_files():
        drv.nwfilter_define(path.read_text())  # each is named 'testcase' or clean-traffic
    assert "testcase" in drv.nwfilter_list()
    assert "<filterref filter=\"no-mac-spoofing\"/>" in drv.nwfilter_xml("clean-traffic")
    drv.nwfilter_undefine("testcase")
    with pytest.raises(NoSuchNWFilter):
        drv.nwfilter_xml("testcase")
    with pytest.raises(OperationInvalid, match="shipped with hvmon"):
        drv.nwfilter_undefine("no-mac-spoofing")
    with pytest.raises(InvalidXML):
        drv.nwfilter_define("<filter name='x'><rule action='allow' direction='in'/></filter>")
    with pytest.raises(InvalidArgument, match="unknown protocol <bogus>"):
        drv.nwfilter_define("<filter name='x'><rule action='drop' direction='in'><bogus/>"
                            "</rule></filter>")
    with pytest.raises(InvalidArgument, match="needs a valid <mac address>"):
        drv.nwfilter_binding_create(binding_xml("vnet0", "zz", None))


def _bridge_conntrack(ns: str) -> str | None:
    """None when nftables' bridge family can match conntrack state here; else the probe."""
    probe = ("table bridge hvprobe { chain c { type filter hook prerouting priority 0; "
             "ct state established accept; }; }")
    done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-c", "-f", "-"], input=probe,
                          capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else \
        f"`nft -c` of '{probe}': {done.stderr.strip().splitlines()[0]}"


@pytest.mark.parametrize("name", ["clean-traffic.xml", "example-1.xml", "example-2.xml",
                                  "ref-test.xml"])
def test_compat_filters_bind(net_conn: tuple[hvmon.Connection, str],  # noqa: F811
                             name: str) -> None:
    """Each translatable libvirt filter loads into nftables as a real binding."""
    conn, ns = net_conn
    drv = conn._driver
    path = COMPAT / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    filt = drv.nwfilter_define(path.read_text())
    if name == "example-2.xml":  # connection state in the bridge family: nf_conntrack_bridge
        problem = _bridge_conntrack(ns)
        if problem:
            with pytest.raises(OperationFailed, match="cannot load the filter rules of port "
                                                      "'vnet7'"):
                drv.nwfilter_binding_create(binding_xml("vnet7", GUEST_MAC, "10.0.0.5", filt))
            pytest.skip(f"kernel capability missing (bridge conntrack): {problem}")
    drv.nwfilter_binding_create(binding_xml("vnet7", GUEST_MAC, "10.0.0.5", filt))
    assert table_name("vnet7") in in_ns(ns, "nft", "list", "tables")
    drv.nwfilter_binding_delete("vnet7")
    assert table_name("vnet7") not in in_ns(ns, "nft", "list", "tables")


# --- clean-traffic bound to a real port ---------------------------------------------------


def ping(ns: str, target: str, source: str) -> bool:
    """One ping from ``source`` in ``ns``: True when the reply came."""
    done = subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "1", "-I",
                           source, target], capture_output=True, text=True, timeout=10,
                          check=False)
    return done.returncode == 0


def test_clean_traffic_drops_spoofed_packets(net_conn: tuple[hvmon.Connection, str],  # noqa: F811
                                             make_ns: Callable[[], str],  # noqa: F811
                                             tmp_path: Path) -> None:
    conn, ns = net_conn
    drv = conn._driver
    net = conn.define_network_xml(nat_xml())
    net.create()
    client = make_ns()
    port = veth_client(ns, "hvbr0", client, GUEST_MAC)
    address = dhcp_client(client, tmp_path)
    spoofed = "10.77.0.200"
    in_ns(client, "ip", "addr", "add", f"{spoofed}/24", "dev", "vg0")
    # static neighbours both ways, so the IP rules alone decide (no ARP with a spoofed IP)
    bridge_mac = json.loads(in_ns(ns, "ip", "-j", "link", "show", "hvbr0"))[0]["address"]
    in_ns(client, "ip", "neigh", "replace", "10.77.0.1", "lladdr", bridge_mac, "dev", "vg0")
    for ip in (address, spoofed):
        in_ns(ns, "ip", "neigh", "replace", ip, "lladdr", GUEST_MAC, "dev", "hvbr0")
    assert ping(client, "10.77.0.1", address) and ping(client, "10.77.0.1", spoofed)

    assert drv.nwfilter_binding_create(binding_xml(port, GUEST_MAC, address)) == port
    assert drv.nwfilter_binding_list() == [port]
    assert f"<portdev name=\"{port}\"/>" in drv.nwfilter_binding_xml(port)
    assert table_name(port) in ruleset(ns)
    assert ping(client, "10.77.0.1", address)  # genuine: passes
    assert not ping(client, "10.77.0.1", spoofed)  # spoofed source IP: dropped
    with pytest.raises(OperationInvalid, match="already has a filter binding"):
        drv.nwfilter_binding_create(binding_xml(port, GUEST_MAC, address))

    # a spoofed MAC address: even the genuine IP is dropped
    in_ns(client, "ip", "link", "set", "vg0", "address", "52:54:00:66:66:66")
    in_ns(ns, "ip", "neigh", "replace", address, "lladdr", "52:54:00:66:66:66", "dev", "hvbr0")
    assert not ping(client, "10.77.0.1", address)
    in_ns(client, "ip", "link", "set", "vg0", "address", GUEST_MAC)
    in_ns(ns, "ip", "neigh", "replace", address, "lladdr", GUEST_MAC, "dev", "hvbr0")
    assert ping(client, "10.77.0.1", address)

    # a filter in use cannot be undefined; the binding goes, the rules with it
    drv.nwfilter_define("<filter name='mine'><filterref filter='clean-traffic'/></filter>")
    drv.nwfilter_binding_delete(port)
    assert table_name(port) not in ruleset(ns)
    assert ping(client, "10.77.0.1", spoofed)
    drv.nwfilter_binding_create(binding_xml(port, GUEST_MAC, address, "mine"))
    with pytest.raises(OperationInvalid, match=f"in use by port\\(s\\) {port}"):
        drv.nwfilter_undefine("mine")
    drv.nwfilter_binding_delete(port)
    drv.nwfilter_undefine("mine")
    with pytest.raises(NoSuchNWFilter):
        drv.nwfilter_binding_delete(port)


def test_guest_ip_learned_from_its_lease(net_conn: tuple[hvmon.Connection, str],  # noqa: F811
                                        make_ns: Callable[[], str],  # noqa: F811
                                        tmp_path: Path) -> None:
    """Bound without an IP, clean-traffic passes DHCP only; the lease then gives the IP."""
    conn, ns = net_conn
    drv = conn._driver
    net = conn.define_network_xml(nat_xml())
    net.create()
    client = make_ns()
    port = veth_client(ns, "hvbr0", client, GUEST_MAC)
    drv.nwfilter_binding_create(binding_xml(port, GUEST_MAC, None))
    assert drv.nwfilter_bindings_waiting() == [port]
    address = dhcp_client(client, tmp_path)  # DHCP passes the filter
    assert not ping(client, "10.77.0.1", address)  # its IP is not known yet: dropped
    assert [lease.ipaddr for lease in net.dhcp_leases()] == [address]  # reading leases learns
    assert drv.nwfilter_bindings_waiting() == []
    assert f"<parameter name=\"IP\" value=\"{address}\"/>" in drv.nwfilter_binding_xml(port)
    in_ns(client, "ip", "neigh", "flush", "dev", "vg0")  # forget the ARP that failed before
    wait_for(lambda: True if ping(client, "10.77.0.1", address) else None, 10,
             "a ping from the learned address")
    drv.nwfilter_binding_delete(port)


# --- a real guest: tap, bridge, filter at start, all gone at stop -------------------------

CHILD = """
import json, subprocess, sys, hvmon
root, net_xml, dom_xml = sys.argv[1:4]
conn = hvmon.open(f"qemu:///embed?root={root}")
out = {}
def tables():
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
def link(name):
    done = subprocess.run(["ip", "-j", "link", "show", "dev", name], capture_output=True,
                          text=True)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None
try:
    conn.create_network_xml(net_xml)
    subprocess.run(["ip", "link", "add", "hostbr0", "type", "bridge"], check=True)
    dom = conn.define_domain_xml(dom_xml)
    import re
    macs = lambda xml: re.findall(r'<mac address="([0-9a-f:]+)"', xml)
    out["macs_defined"] = macs(dom.xml_desc(inactive=True))
    dom.create()
    out["macs_live"] = macs(dom.xml_desc())
    live = dom.xml_desc()
    taps = re.findall(r"<target dev=\\"(vnet\\d+)\\"", live)
    out["taps"] = taps
    out["links"] = {t: link(t) for t in taps}
    out["tables"] = tables()
    out["cmdline"] = open(f"/proc/{conn._driver.running_pids()[dom.name]}/cmdline").read()
    out["nwfilter_ports"] = conn._driver.nwfilter_binding_list()
    dom.destroy()
    out["after_links"] = {t: link(t) for t in taps}
    out["after_tables"] = tables()
    out["after_ports"] = conn._driver.nwfilter_binding_list()
    out["inactive_xml"] = dom.xml_desc()
    out["macs_after"] = macs(out["inactive_xml"])
finally:
    conn._driver.networks().stop_all()
    conn.close()
print(json.dumps(out))
"""


def test_guest_nics_get_taps_and_filters(make_ns: Callable[[], str],  # noqa: F811
                                         qemu_root: Path,
                                         domain_type: str) -> None:
    ns = make_ns()
    nics = """
    <interface type='network'><source network='n1'/><model type='virtio'/>
      <filterref filter='clean-traffic'><parameter name='IP' value='10.77.0.50'/></filterref>
    </interface>
    <interface type='bridge'><source bridge='hostbr0'/><model type='e1000'/></interface>"""
    dom = guest_xml("netguest", domain_type, extra=nics)
    out = json.loads(in_ns(ns, sys.executable, "-c", CHILD, str(qemu_root), nat_xml(), dom))
    assert out["taps"] == ["vnet0", "vnet1"]
    assert out["links"]["vnet0"]["master"] == "hvbr0"
    assert out["links"]["vnet1"]["master"] == "hostbr0"
    assert out["links"]["vnet0"]["address"].startswith("fe:54:00:")
    args = out["cmdline"].split("\0")
    assert any(a.startswith("tap,id=hostnet1,ifname=vnet0,script=no,downscript=no")
               for a in args), args
    assert table_name("vnet0") in out["tables"] and table_name("vnet1") not in out["tables"]
    assert out["nwfilter_ports"] == ["vnet0"]
    assert out["after_links"] == {"vnet0": None, "vnet1": None}
    assert table_name("vnet0") not in out["after_tables"]
    assert out["after_ports"] == []
    assert "vnet0" not in out["inactive_xml"]  # the tap is live-only
    # MAC addresses are filled at define and stay the same across a start
    assert len(out["macs_defined"]) == 3
    assert out["macs_defined"] == out["macs_live"] == out["macs_after"]


def test_guest_on_inactive_network_refused(open_qemu: Callable[..., hvmon.Connection],
                                           domain_type: str) -> None:
    conn = open_qemu()
    conn.define_network_xml(nat_xml())
    dom = conn.define_domain_xml(guest_xml("g2", domain_type, extra=(
        "<interface type='network'><source network='n1'/></interface>")))
    with pytest.raises(OperationInvalid, match="network 'n1' is not active"):
        dom.create()
    assert not dom.is_active()


def test_the_public_api_reaches_the_qemu_drivers_filters(open_qemu) -> None:
    """hvmon.Connection's nwfilter calls on the QEMU driver (no binding: that needs nft)."""
    import hvmon

    conn = open_qemu()
    names = {f.name for f in conn.list_all_nwfilters()}
    assert "clean-traffic" in names
    assert "<filter" in conn.lookup_nwfilter_by_name("clean-traffic").xml_desc()
    mine = conn.define_nwfilter_xml("<filter name='api-test' chain='ipv4'><rule "
                                    "action='drop' direction='out'><tcp dstportstart='25'/>"
                                    "</rule></filter>")
    assert mine.name == "api-test" and "api-test" in {f.name for f in conn.list_all_nwfilters()}
    mine.undefine()
    with pytest.raises(hvmon.NoSuchNWFilter):
        conn.lookup_nwfilter_by_name("api-test")
    assert conn.list_all_nwfilter_bindings() == []
