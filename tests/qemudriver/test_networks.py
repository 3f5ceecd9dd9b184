"""Virtual networks of the QEMU driver, for real, inside network namespaces made here.

Every test that runs a host command works in namespaces it creates (``ip netns
add``, removed in a finaliser with every process left in them stopped by PID);
the driver runs its commands there (``use_network_namespace``) or runs inside
one itself (a child ``ip netns exec NS python``). Nothing touches the host's
own network. A kernel without network namespaces or nftables is an explicit
skip that prints the probe; a missing tool fails when CI=true.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree
from toolcheck import need_tool, wait_for

import hvmon
from hvmon.core.drivers.qemu.cmdline import build_command, device_args_for_hotplug
from hvmon.core.errors import (
    InvalidArgument,
    InvalidXML,
    OperationFailed,
    OperationInvalid,
    Unsupported,
)
from hvmon.core.snapshot.collector import collect_snapshot
from hvmon.core.xml.domain import Domain as DomainXML

from .conftest import QEMU_72, guest_xml, load_caps

TOOLS = {"ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base", "sysctl": "procps"}
_COUNTER = itertools.count()
REPO = Path(__file__).resolve().parents[2]

NAT_XML = """<network><name>{name}</name><forward mode='nat'/><bridge name='{bridge}'/>
  <ip address='{prefix}.1' netmask='255.255.255.0'><dhcp>
    <range start='{prefix}.100' end='{prefix}.150'/>
    <host mac='52:54:00:aa:bb:01' name='fixed' ip='{prefix}.20'/>
  </dhcp></ip></network>"""


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, input=stdin,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(ns: str, *argv: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def _probe_kernel() -> str | None:
    """None when netns + nftables work here; else the failing probe and its answer."""
    name = f"hvprobe{os.getpid()}"
    probe = ["ip", "netns", "add", name]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"probe `{' '.join(probe)}` failed: {done.stderr.strip()}"
    try:
        for argv in (["nft", "add", "table", "inet", "hvprobe"],
                     ["ip", "link", "add", "hvprobebr", "type", "bridge"],
                     ["ip", "tuntap", "add", "dev", "hvprobetap", "mode", "tap"]):
            done = subprocess.run(["ip", "netns", "exec", name, *argv], capture_output=True,
                                  text=True, check=False)
            if done.returncode != 0:
                return f"probe `{' '.join(argv)}` in a namespace failed: {done.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


@pytest.fixture(scope="session")
def net_tools() -> None:
    for tool, package in TOOLS.items():
        need_tool(tool, f"Debian package {package}")
    if os.geteuid() != 0:
        pytest.skip("virtual networks need root (CAP_NET_ADMIN): running as uid "
                    f"{os.geteuid()}")
    problem = _probe_kernel()
    if problem:
        pytest.skip(f"kernel capability missing: {problem}")


@pytest.fixture
def make_ns(net_tools: None) -> Iterator[Callable[[], str]]:
    """``make_ns()``: a fresh network namespace (lo up), deleted with its processes."""
    made: list[str] = []

    def make() -> str:
        name = f"hvt{os.getpid()}n{next(_COUNTER)}"
        sh("ip", "netns", "add", name)
        made.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    yield make
    for name in made:
        pids = sh("ip", "netns", "pids", name, check=False).split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def net_conn(make_ns: Callable[[], str], open_qemu: Callable[..., hvmon.Connection]
             ) -> Iterator[tuple[hvmon.Connection, str]]:
    """A connection whose driver runs network commands in a fresh namespace."""
    ns = make_ns()
    conn = open_qemu()
    conn._driver.use_network_namespace(ns)  # type: ignore[attr-defined]
    yield conn, ns
    conn._driver.networks().stop_all()  # type: ignore[attr-defined]


def nat_xml(name: str = "n1", bridge: str = "hvbr0", prefix: str = "10.77.0") -> str:
    return NAT_XML.format(name=name, bridge=bridge, prefix=prefix)


def links(ns: str) -> dict[str, dict[str, object]]:
    return {item["ifname"]: item for item in json.loads(in_ns(ns, "ip", "-j", "-d", "addr"))}


def ruleset(ns: str) -> str:
    return in_ns(ns, "nft", "list", "ruleset")


def veth_client(ns: str, bridge: str, client_ns: str, mac: str) -> str:
    """A veth pair: ``vh0`` plugged into ``bridge`` in ``ns``, ``vg0`` (MAC) in ``client_ns``."""
    in_ns(ns, "ip", "link", "add", "vh0", "type", "veth", "peer", "name", "vg0", "netns",
          client_ns)
    in_ns(ns, "ip", "link", "set", "vh0", "master", bridge, "up")
    in_ns(client_ns, "ip", "link", "set", "vg0", "address", mac, "up")
    return "vh0"


def dhcp_client(client_ns: str, tmp: Path, tries: str = "10") -> str:
    """Run busybox udhcpc once on ``vg0``; the address it obtained (applied to vg0)."""
    udhcpc = need_tool("udhcpc", "Debian package udhcpc")
    script = tmp / "udhcpc.sh"
    script.write_text(textwrap.dedent("""\
        #!/bin/sh
        if [ "$1" = bound ] || [ "$1" = renew ]; then
          ip addr flush dev "$interface"
          ip addr add "$ip/$mask" dev "$interface"
          echo "$ip" > "$(dirname "$0")/address"
        fi
        """))
    script.chmod(0o755)
    in_ns(client_ns, udhcpc, "-i", "vg0", "-n", "-q", "-f", "-t", tries, "-T", "1", "-s",
          str(script))
    return (tmp / "address").read_text().strip()


# --- definitions: validation (no host command) -----------------------------------------


def test_overlapping_subnets_and_duplicate_bridges_refused(
        open_qemu: Callable[..., hvmon.Connection]) -> None:
    conn = open_qemu()
    conn.define_network_xml(nat_xml("a", "hvbr0", "10.77.0"))
    with pytest.raises(InvalidArgument, match=r"subnet 10\.77\.0\.0/24 overlaps 10\.77\.0\.0/24 "
                                              r"of network 'a'"):
        conn.define_network_xml(nat_xml("b", "hvbr1", "10.77.0"))
    with pytest.raises(InvalidArgument, match="bridge name 'hvbr0' is already used by network "
                                              "'a'"):
        conn.define_network_xml(nat_xml("c", "hvbr0", "10.78.0"))
    wide = ("<network><name>d</name><bridge name='hvbr3'/>"
            "<ip address='10.0.0.1' netmask='255.0.0.0'/></network>")
    with pytest.raises(InvalidArgument, match="overlaps"):
        conn.define_network_xml(wide)
    assert [n.name for n in conn.list_all_networks()] == ["a"]
    # a redefinition of the same network is not a conflict with itself
    conn.define_network_xml(nat_xml("a", "hvbr0", "10.77.0"))
    # a bridge name is filled (lowest free virbrN) and kept on redefinition
    net = conn.define_network_xml("<network><name>e</name><ip address='10.79.0.1' "
                                  "prefix='24'/></network>")
    assert "<bridge name=\"virbr0\"/>" in net.xml_desc()


@pytest.mark.parametrize(("xml", "error", "text"), [
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.1' netmask='255.255.255.0'>"
     "<dhcp><range start='10.2.0.5' end='10.2.0.9'/></dhcp></ip></network>",
     InvalidArgument, r"DHCP range 10\.2\.0\.5-10\.2\.0\.9 is not inside 10\.1\.0\.0/24"),
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.1' netmask='255.255.255.0'>"
     "<dhcp><range start='10.1.0.9' end='10.1.0.5'/></dhcp></ip></network>",
     InvalidArgument, "ends before it starts"),
    ("<network><name>x</name><forward mode='bridge'/><bridge name='br0'/>"
     "<ip address='10.1.0.1' prefix='24'/></network>", InvalidArgument, "takes no <ip>"),
    ("<network><name>x</name><forward mode='passthrough'/></network>", Unsupported,
     "forward mode 'passthrough'"),
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.0' prefix='24'/></network>",
     InvalidArgument, "network or broadcast address"),
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.1' netmask='255.0.255.0'/>"
     "</network>", InvalidArgument, "invalid netmask"),
    ("<network><name>x</name><bridge name='a-very-long-bridge-name'/></network>",
     InvalidXML, "<bridge> in <network> does not match the schema"),
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.1' prefix='24'><dhcp>"
     "<host mac='zz' ip='10.1.0.3'/></dhcp></ip></network>", InvalidXML,
     "invalid MAC address 'zz'"),
    ("<network><name>x</name><bridge name='b1'/><ip address='10.1.0.1' prefix='24'><dhcp>"
     "<host mac='52:54:00:00:00:01' ip='10.9.0.3'/></dhcp></ip></network>", InvalidArgument,
     r"DHCP host address 10\.9\.0\.3 is not inside 10\.1\.0\.0/24"),
])
def test_invalid_networks_refused(open_qemu: Callable[..., hvmon.Connection], xml: str,
                                  error: type[Exception], text: str) -> None:
    conn = open_qemu()
    with pytest.raises(error, match=text):
        conn.define_network_xml(xml)
    assert conn.list_all_networks() == []


def test_compat_networks_load(open_qemu: Callable[..., hvmon.Connection]) -> None:
    """libvirt's documents define unchanged (served modes) or are refused in one line."""
    conn = open_qemu()
    compat = REPO.parent / "shared/compat/libvirt-xml/network"
    if not compat.is_dir():
        pytest.skip(f"{compat} is not here")
    served, refused = [], []
    for path in sorted(compat.glob("*.xml")):
        try:
            net = conn.define_network_xml(path.read_text())
        except Unsupported as exc:
            refused.append((path.name, str(exc)))
            continue
        except InvalidArgument as exc:  # two corpus files share a subnet or bridge
            assert "overlaps" in str(exc) or "already used" in str(exc) or \
                "already exists" in str(exc), f"{path.name}: {exc}"
            refused.append((path.name, str(exc)))
            continue
        served.append(path.name)
        net.undefine()
    assert {"nat-network.xml", "isolated-network.xml", "routed-network.xml",
            "host-bridge-net.xml", "open-network.xml"} <= set(served)
    assert all("\n" not in text for _, text in refused)


# --- start and stop in a namespace -------------------------------------------------------


def test_nat_network_start_stop(net_conn: tuple[hvmon.Connection, str]) -> None:
    conn, ns = net_conn
    net = conn.define_network_xml(nat_xml())
    net.create()
    found = links(ns)
    assert found["hvbr0"]["linkinfo"]["info_kind"] == "bridge"  # type: ignore[index]
    assert any(a["local"] == "10.77.0.1" and a["prefixlen"] == 24
               for a in found["hvbr0"]["addr_info"])  # type: ignore[attr-defined]
    rules = ruleset(ns)
    assert "ip saddr 10.77.0.0/24 ip daddr != 10.77.0.0/24 masquerade" in rules
    assert 'iifname "hvbr0" reject' in rules
    assert in_ns(ns, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    rundir = Path(conn._driver.paths.run) / "networks"  # type: ignore[attr-defined]
    pid = int((rundir / "n1.pid").read_text())
    assert str(rundir / "n1.conf") in Path(f"/proc/{pid}/cmdline").read_text()
    assert sh("ip", "netns", "identify", str(pid)).strip() == ns  # dnsmasq runs in the ns
    conf = (rundir / "n1.conf").read_text()
    assert "dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h" in conf
    assert "dhcp-host=52:54:00:aa:bb:01,10.77.0.20,fixed" in conf
    assert net.is_active() and net.dhcp_leases() == []

    net.destroy()
    assert "hvbr0" not in links(ns)
    assert "hvmon" not in ruleset(ns)
    wait_for(lambda: True if not Path(f"/proc/{pid}").exists() or
             Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z" else None,
             5, "dnsmasq to exit")
    assert sorted(p.name for p in rundir.iterdir()) == []
    assert not net.is_active() and net.is_persistent()
    with pytest.raises(OperationInvalid, match="not active"):
        net.destroy()


def test_dhcp_lease_from_a_real_client(net_conn: tuple[hvmon.Connection, str],
                                       make_ns: Callable[[], str], tmp_path: Path) -> None:
    conn, ns = net_conn
    net = conn.define_network_xml(nat_xml())
    net.create()
    client = make_ns()
    veth_client(ns, "hvbr0", client, "52:54:00:12:34:56")
    address = dhcp_client(client, tmp_path)
    assert address.startswith("10.77.0.") and 100 <= int(address.rsplit(".", 1)[1]) <= 150
    leases = wait_for(lambda: net.dhcp_leases() or None, 5, "the lease in dnsmasq's file")
    assert [(lease.mac, lease.ipaddr, lease.prefix, lease.type, lease.iface)
            for lease in leases] == [("52:54:00:12:34:56", address, 24, "ipv4", "hvbr0")]
    assert net.dhcp_leases("52:54:00:99:99:99") == []
    # the client reaches the host over the bridge
    in_ns(client, "ping", "-c", "1", "-W", "2", "10.77.0.1")
    # the agents' snapshot counts it against the range
    snap = collect_snapshot(conn, previous=None, generation=1, deadline=5.0)
    [found] = [n for n in snap.networks if n.name == "n1"]
    assert (found.active, found.dhcp_leases, found.dhcp_range_size) == (True, 1, 51)
    # the CLI shows it too (run inside the namespace: it opens the same root)
    root = conn._driver.paths.run.parent.parent  # type: ignore[attr-defined]
    conn.close()
    out = in_ns(ns, str(Path(sys.executable).with_name("hvmon")), "-c",
                f"qemu:///embed?root={root}", "net-dhcp-leases", "n1")
    assert "52:54:00:12:34:56" in out and f"{address}/24" in out


def test_exhausted_range(net_conn: tuple[hvmon.Connection, str], make_ns: Callable[[], str],
                         tmp_path: Path) -> None:
    """A one-address range: the first client gets it, the second none; agents see 1 of 1."""
    conn, ns = net_conn
    net = conn.define_network_xml(
        "<network><name>tiny</name><bridge name='hvbrt'/><ip address='10.81.0.1' prefix='24'>"
        "<dhcp><range start='10.81.0.10' end='10.81.0.10'/></dhcp></ip></network>")
    net.create()
    first = make_ns()
    veth_client(ns, "hvbrt", first, "52:54:00:00:00:01")
    assert dhcp_client(first, tmp_path) == "10.81.0.10"
    second = make_ns()
    in_ns(ns, "ip", "link", "add", "vh1", "type", "veth", "peer", "name", "vg0", "netns",
          second)
    in_ns(ns, "ip", "link", "set", "vh1", "master", "hvbrt", "up")
    in_ns(second, "ip", "link", "set", "vg0", "up")
    (tmp_path / "second").mkdir()
    with pytest.raises(AssertionError):  # udhcpc -n exits non-zero without a lease
        dhcp_client(second, tmp_path / "second", tries="2")
    assert not (tmp_path / "second/address").exists()
    snap = collect_snapshot(conn, previous=None, generation=1, deadline=5.0)
    [found] = [n for n in snap.networks if n.name == "tiny"]
    assert (found.dhcp_leases, found.dhcp_range_size) == (1, 1)


def test_static_host_gets_its_address(net_conn: tuple[hvmon.Connection, str],
                                      make_ns: Callable[[], str], tmp_path: Path) -> None:
    conn, ns = net_conn
    net = conn.define_network_xml(nat_xml())
    net.create()
    client = make_ns()
    veth_client(ns, "hvbr0", client, "52:54:00:aa:bb:01")
    assert dhcp_client(client, tmp_path) == "10.77.0.20"
    leases = wait_for(lambda: net.dhcp_leases() or None, 5, "the lease")
    assert leases[0].hostname in ("fixed", "")


def test_start_refused_when_subnet_in_use_and_host_left_as_it_was(
        net_conn: tuple[hvmon.Connection, str]) -> None:
    conn, ns = net_conn
    in_ns(ns, "ip", "link", "add", "dummy7", "type", "bridge")
    in_ns(ns, "ip", "addr", "add", "10.77.0.5/24", "dev", "dummy7")
    in_ns(ns, "ip", "link", "set", "dummy7", "up")
    before = (set(links(ns)), ruleset(ns))
    net = conn.define_network_xml(nat_xml())
    with pytest.raises(InvalidArgument, match=r"10\.77\.0\.0/24 is already in use by "
                                              "interface dummy7"):
        net.create()
    assert (set(links(ns)), ruleset(ns)) == before and not net.is_active()
    # a device already holding the bridge's name
    in_ns(ns, "ip", "link", "add", "hvbr9", "type", "bridge")
    other = conn.define_network_xml(nat_xml("n2", "hvbr9", "10.78.0"))
    with pytest.raises(InvalidArgument, match="'hvbr9' already exists"):
        other.create()
    assert "hvmon" not in ruleset(ns)


def test_two_active_networks_and_transient(net_conn: tuple[hvmon.Connection, str]) -> None:
    conn, ns = net_conn
    a = conn.define_network_xml(nat_xml("a", "hvbr0", "10.77.0"))
    a.create()
    b = conn.create_network_xml(nat_xml("b", "hvbr1", "10.78.0"))
    assert b.is_active() and not b.is_persistent()
    assert {"hvbr0", "hvbr1"} <= set(links(ns))
    assert ruleset(ns).count("masquerade") == 2
    b.destroy()
    assert [n.name for n in conn.list_all_networks()] == ["a"]
    assert "hvbr1" not in links(ns) and ruleset(ns).count("masquerade") == 1


@pytest.mark.parametrize("mode", ["route", "isolated", "open"])
def test_other_modes(net_conn: tuple[hvmon.Connection, str], mode: str) -> None:
    conn, ns = net_conn
    forward = "" if mode == "isolated" else f"<forward mode='{mode}'/>"
    net = conn.define_network_xml(
        f"<network><name>m</name>{forward}<bridge name='hvbrm'/>"
        "<ip address='10.80.0.1' prefix='24'><dhcp><range start='10.80.0.10' "
        "end='10.80.0.20'/></dhcp></ip></network>")
    net.create()
    rules = ruleset(ns)
    assert "hvbrm" in links(ns)
    assert "masquerade" not in rules
    if mode == "route":
        assert 'oifname "hvbrm" ip daddr 10.80.0.0/24 accept' in rules
        assert 'iifname "hvbrm" ip saddr 10.80.0.0/24 accept' in rules
    elif mode == "isolated":
        assert 'iifname "hvbrm" reject' in rules and "saddr 10.80.0.0/24 accept" not in rules
    else:
        assert "hvmon" not in rules
    net.destroy()
    assert "hvbrm" not in links(ns) and "hvmon" not in ruleset(ns)


def test_bridge_mode_uses_an_existing_bridge(net_conn: tuple[hvmon.Connection, str]) -> None:
    conn, ns = net_conn
    net = conn.define_network_xml("<network><name>hb</name><forward mode='bridge'/>"
                                  "<bridge name='hostbr0'/></network>")
    with pytest.raises(InvalidArgument, match="host bridge 'hostbr0' does not exist"):
        net.create()
    in_ns(ns, "ip", "link", "add", "hostbr0", "type", "bridge")
    net.create()
    net.destroy()
    assert "hostbr0" in links(ns)  # not ours: left alone
    assert "hvmon" not in ruleset(ns)


def test_reopen_finds_active_networks(make_ns: Callable[[], str], qemu_root: Path) -> None:
    ns = make_ns()
    conn = hvmon.open(f"qemu:///embed?root={qemu_root}")
    try:
        conn._driver.use_network_namespace(ns)  # type: ignore[attr-defined]
        net = conn.define_network_xml(nat_xml())
        net.create()
    finally:
        conn.close()
    conn = hvmon.open(f"qemu:///embed?root={qemu_root}")
    try:
        conn._driver.use_network_namespace(ns)  # type: ignore[attr-defined]
        net = conn.lookup_network_by_name("n1")
        assert net.is_active()
        net.destroy()
        assert "hvbr0" not in links(ns)
        # a live file whose bridge vanished is cleaned up on the next open
        net.create()
    finally:
        conn.close()
    in_ns(ns, "ip", "link", "del", "hvbr0")
    conn = hvmon.open(f"qemu:///embed?root={qemu_root}")
    try:
        conn._driver.use_network_namespace(ns)  # type: ignore[attr-defined]
        assert not conn.lookup_network_by_name("n1").is_active()
        assert "hvmon" not in ruleset(ns)
    finally:
        conn.close()


CHILD = """
import json, sys, hvmon
root, step = sys.argv[1], sys.argv[2]
conn = hvmon.open(f"qemu:///embed?root={root}")
out = {}
if step == "define":
    net = conn.define_network_xml(sys.argv[3])
    net.set_autostart(True)
    out["subnet"] = conn._driver.ensure_default_network()
else:
    out["active"] = {n.name: n.is_active() for n in conn.list_all_networks()}
    out["default"] = conn.lookup_network_by_name("default").xml_desc()
    conn._driver.networks().stop_all()
conn.close()
print(json.dumps(out))
"""


def test_autostart_and_default_network(make_ns: Callable[[], str], qemu_root: Path) -> None:
    """Run as the daemon would, inside a namespace: autostart on open; default network."""
    ns = make_ns()
    # 192.168.122.0/24 is taken by a route here: the default network takes the next /24
    in_ns(ns, "ip", "link", "add", "dummy1", "type", "bridge")
    in_ns(ns, "ip", "addr", "add", "192.168.122.7/24", "dev", "dummy1")
    in_ns(ns, "ip", "link", "set", "dummy1", "up")
    child = [sys.executable, "-c", CHILD, str(qemu_root)]
    first = json.loads(in_ns(ns, *child, "define", nat_xml()))
    assert first["subnet"] == "192.168.123.0/24"
    assert "hvbr0" not in links(ns)  # defined, not started
    second = json.loads(in_ns(ns, *child, "reopen"))
    assert second["active"] == {"n1": True, "default": True}
    assert "192.168.123.1" in second["default"]
    assert "hvbr0" not in links(ns) and "virbr0" not in links(ns)


def test_namespace_is_fixed_after_first_use(net_conn: tuple[hvmon.Connection, str]) -> None:
    conn, _ = net_conn
    conn.list_all_networks()
    with pytest.raises(OperationInvalid, match="before the first network call"):
        conn._driver.use_network_namespace(None)  # type: ignore[attr-defined]


# --- the command line of tap NICs (no host command) -----------------------------------


def _tap_guest(target: str = "") -> DomainXML:
    dev = f"<target dev='{target}'/>" if target else ""
    dom = DomainXML.from_xml(guest_xml("tapguest", "qemu", extra=(
        "<interface type='network'><mac address='52:54:00:00:00:0a'/><source network='n1'/>"
        f"{dev}<model type='virtio'/></interface>")))
    dom.uuid = "c7a5fdbd-edaf-9455-926a-d65c16db1809"
    for nic in dom.element.iterfind("devices/interface"):
        if nic.find("mac") is None:
            etree.SubElement(nic, "mac", address="52:54:00:00:00:0b")
    return dom


def test_tap_nic_command_line() -> None:
    argv = build_command(_tap_guest("vnet3"), load_caps(QEMU_72), monitor=Path("/tmp/m.sock"),
                         accel="tcg")
    assert "tap,id=hostnet1,ifname=vnet3,script=no,downscript=no" in argv
    assert "user,id=hostnet0" in argv  # the user-mode NIC is as it was
    device = argv[argv.index("tap,id=hostnet1,ifname=vnet3,script=no,downscript=no") + 2]
    assert device.startswith("virtio-net-pci,netdev=hostnet1,id=net1,mac=52:54:00:00:00:0a")
    with pytest.raises(Unsupported, match="interface type 'network' needs its tap device"):
        build_command(_tap_guest(), load_caps(QEMU_72), monitor=Path("/tmp/m.sock"),
                      accel="tcg")
    dom = _tap_guest("vnet3")
    nic = dom.element.findall("devices/interface")[1]
    etree.SubElement(nic, "alias", name="net1")
    etree.SubElement(nic, "address", type="pci", domain="0x0000", bus="0x00", slot="0x07",
                     function="0x0")
    with pytest.raises(Unsupported, match="hot-plug of an interface of type 'network'"):
        device_args_for_hotplug(dom, nic, load_caps(QEMU_72), node_index=1)


def test_compat_networks_start_in_a_namespace(net_conn: tuple[hvmon.Connection, str]) -> None:
    """libvirt's documents of the served modes start and stop unchanged (IPv6 included)."""
    conn, ns = net_conn
    compat = REPO.parent / "shared/compat/libvirt-xml/network"
    if not compat.is_dir():
        pytest.skip(f"{compat} is not here")
    in_ns(ns, "ip", "link", "add", "br0", "type", "bridge")  # host-bridge-net's bridge
    started = []
    for path in sorted(compat.glob("*.xml")):
        try:
            net = conn.define_network_xml(path.read_text())
        except Unsupported:
            continue  # openvswitch-net: refused at define
        net.create()
        assert net.is_active()
        started.append(path.name)
        if path.name == "dhcp6-nat-network.xml":
            conf = (Path(conn._driver.paths.run) / "networks/default.conf").read_text()
            assert "dhcp-range=2001:db8:ac10:fd01::1:10,2001:db8:ac10:fd01::1:ff,64,1h" in conf
            assert "dhcp-host=id:0:3:0:1:0:16:3e:11:22:33,[2001:db8:ac10:fd01::1:22]," \
                   "peter.xyz" in conf
            assert "2001:db8:ac10:fd01::1/64" in in_ns(ns, "ip", "-6", "addr", "show",
                                                        "virbr0")
        net.destroy()
        net.undefine()
        assert "hvmon" not in ruleset(ns)
    assert len(started) == 11
    assert set(links(ns)) == {"lo", "br0"}


def test_clear_errors_without_namespace_or_root(open_qemu: Callable[..., hvmon.Connection],
                                                make_ns: Callable[[], str]) -> None:
    conn = open_qemu()
    with pytest.raises(InvalidArgument, match="invalid network namespace name"):
        conn._driver.use_network_namespace("bad name")  # type: ignore[attr-defined]
    conn._driver.use_network_namespace("hvmon-no-such-ns")  # type: ignore[attr-defined]
    net = conn.define_network_xml(nat_xml())
    with pytest.raises(OperationFailed, match="Cannot open network namespace "
                                              "\"hvmon-no-such-ns\".*ip netns add NAME"):
        net.create()
    assert not net.is_active()
    # without root: the tool's refusal and what it means (ip as nobody, in a namespace)
    ns = make_ns()
    done = subprocess.run(["ip", "netns", "exec", ns, "setpriv", "--reuid=65534",
                           "--regid=65534", "--clear-groups",
                           sys.executable, "-c",
                           "from hvmon.core.drivers.qemu.networks.runner import Runner\n"
                           "try:\n Runner().run('ip', 'link', 'add', 'hvx0', 'type', 'bridge')\n"
                           "except Exception as exc:\n print(exc)"],
                          capture_output=True, text=True, timeout=30, check=False,
                          cwd="/")
    assert "Operation not permitted (virtual networks need root: CAP_NET_ADMIN)" in done.stdout, \
        done.stderr


def test_the_daemon_defines_and_starts_the_default_network(make_ns: Callable[[], str],
                                                           qemu_root: Path) -> None:
    """``[daemon] default_network = true`` (the driver's commands in a namespace)."""
    from .test_daemon import Hvmond

    ns = make_ns()
    daemon = Hvmond(qemu_root, query=f"&netns={ns}", extra="default_network = true\n")
    try:
        with hvmon.open(daemon.uri) as conn:
            net = conn.lookup_network_by_name("default")
            assert net.is_active() and net.is_persistent()
            bridge = etree.fromstring(net.xml_desc().encode()).find("bridge").get("name")
            assert bridge in links(ns)
            net.destroy()
            assert bridge not in links(ns)
    finally:
        daemon.stop()
