"""QEMU command lines: best-practice syntax per capabilities, ids, addresses, refusals.

The last tests start the generated argv under the installed QEMU (TCG, 64 MiB)
and check over QMP that it came up stopped with the devices where the XML says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from toolcheck import need_tool, wait_for

from hvmon.core.drivers.qemu.addresses import assign_addresses, bus_id, pci_address_of
from hvmon.core.drivers.qemu.caps import QemuCaps, probe
from hvmon.core.drivers.qemu.cmdline import DeviceArgs, build_command, device_args_for_hotplug
from hvmon.core.drivers.qemu.machine import machine_family
from hvmon.core.errors import InvalidArgument, Unsupported
from hvmon.core.xml.domain import Domain

from .conftest import OLD_QEMU, QEMU_72, load_caps

MONITOR = Path("/run/hvmon-test/guest.monitor")
SECRET = "s3cr3t-vnc-pw"




GUEST = """<domain type='qemu'>
  <name>{name}</name>
  <uuid>9b1e6a53-7d3f-4c64-8d1a-0c5b3f1f2a10</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu current='1'>2</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{cdrom}'/>
      <target dev='{cd_dev}' bus='{cd_bus}'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{serial_log}'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <target type='serial' port='0'/>
    </console>
    {graphics}
    <video><model type='vga' primary='yes'/></video>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
"""


def guest(machine: str = "pc", name: str = "guest1", disk: str = "/images/vm.qcow2",
          graphics: str = "", tmp: Path = Path("/var/log/hvmon")) -> Domain:
    cd_dev, cd_bus = ("hdc", "ide") if machine.startswith("pc") else ("sda", "sata")
    cdrom = tmp / "seed.iso"
    dom = Domain.from_xml(GUEST.format(name=name, machine=machine, disk=disk, cdrom=cdrom,
                                       cd_dev=cd_dev, cd_bus=cd_bus, graphics=graphics,
                                       serial_log=tmp / "serial.log"))
    assign_addresses(dom, machine)
    return dom


def options(argv: list[str], flag: str) -> list[str]:
    """The values given to every occurrence of ``flag``."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def props(value: str) -> dict[str, str]:
    """``driver,k=v,...`` -> dict (handles ``,,`` escapes); the bare head is ``_``."""
    parts, current, i = [], "", 0
    while i < len(value):
        if value[i] == ",":
            if value[i + 1:i + 2] == ",":
                current += ","
                i += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += value[i]
        i += 1
    parts.append(current)
    out: dict[str, str] = {}
    for part in parts:
        key, sep, val = part.partition("=")
        if sep:
            out[key] = val
        else:
            out["_"] = key
    return out


# --- syntax by capabilities ---------------------------------------------------------


def test_installed_qemu_gets_blockdev() -> None:
    argv = build_command(guest(), load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert "-drive" not in argv
    nodes = [json.loads(v) for v in options(argv, "-blockdev")]
    assert nodes[0] == {"driver": "file", "filename": "/images/vm.qcow2",
                        "node-name": "libvirt-1-storage", "auto-read-only": True,
                        "discard": "unmap"}
    assert nodes[1] == {"node-name": "libvirt-1-format", "read-only": False,
                        "driver": "qcow2", "file": "libvirt-1-storage"}
    assert nodes[3]["read-only"] is True  # the cdrom
    disk = props(next(d for d in options(argv, "-device") if d.startswith("virtio-blk-pci")))
    assert disk["drive"] == "libvirt-1-format" and disk["id"] == "virtio-disk0"
    assert disk["bootindex"] == "1"
    cd = props(next(d for d in options(argv, "-device") if d.startswith("ide-cd")))
    assert cd == {"_": "ide-cd", "bus": "ide.1", "unit": "0", "drive": "libvirt-2-format",
                  "id": "ide0-1-0"}


def test_old_qemu_gets_drive() -> None:
    old = load_caps(OLD_QEMU)
    argv = build_command(guest(), old, monitor=MONITOR, accel="tcg")
    assert "-blockdev" not in argv
    drives = [props(v) for v in options(argv, "-drive")]
    assert drives[0] == {"file": "/images/vm.qcow2", "format": "qcow2", "if": "none",
                         "id": "drive-virtio-disk0"}
    assert drives[1]["readonly"] == "on" and drives[1]["media"] == "cdrom"
    disk = props(next(d for d in options(argv, "-device") if d.startswith("virtio-blk-pci")))
    assert disk["drive"] == "drive-virtio-disk0" and disk["id"] == "virtio-disk0"
    # the alias resolved against the old binary's own machine list
    assert props(options(argv, "-machine")[0])["_"] == "pc-i440fx-2.12"


def test_best_practice_options() -> None:
    caps = load_caps(QEMU_72)
    argv = build_command(guest("q35"), caps, monitor=MONITOR, accel="tcg")
    assert argv[0] == caps.binary
    assert options(argv, "-name") == ["guest=guest1,debug-threads=on"]
    assert options(argv, "-uuid") == ["9b1e6a53-7d3f-4c64-8d1a-0c5b3f1f2a10"]
    assert "-S" in argv and "-nodefaults" in argv and "-no-user-config" in argv
    machine = props(options(argv, "-machine")[0])
    assert machine == {"_": "pc-q35-7.2", "accel": "tcg", "usb": "off",
                       "dump-guest-core": "off"}
    assert options(argv, "-m") == ["64"]
    assert options(argv, "-smp") == ["1,maxcpus=2,sockets=2,cores=1,threads=1"]
    assert options(argv, "-qmp") == [f"unix:{MONITOR},server=on,wait=off"]
    assert options(argv, "-boot") == ["strict=on"]
    assert options(argv, "-display") == ["none"]
    assert options(argv, "-sandbox")[0].startswith("on,obsolete=deny")
    assert "-nographic" not in argv and "-vnc" not in argv


def test_every_device_has_an_id() -> None:
    for machine, caps in (("pc", load_caps(QEMU_72)), ("q35", load_caps(QEMU_72)),
                          ("pc", load_caps(OLD_QEMU))):
        argv = build_command(guest(machine, graphics="<graphics type='vnc' port='5901'/>"),
                             caps, monitor=MONITOR, accel="tcg")
        ids: list[str] = []
        for flag in ("-device", "-netdev", "-chardev", "-object", "-drive"):
            for value in options(argv, flag):
                ids.append(props(value)["id"])
        ids += [json.loads(v)["node-name"] for v in options(argv, "-blockdev")]
        assert all(ids) and len(ids) == len(set(ids)), ids
        devices = {props(v)["_"]: props(v) for v in options(argv, "-device")}
        assert devices["virtio-net-pci"]["netdev"] == "hostnet0"
        assert devices["virtio-net-pci"]["id"] == "net0"
        assert devices["virtio-net-pci"]["mac"] == "52:54:00:12:34:56"
        assert devices["virtio-balloon-pci"]["id"] == "balloon0"
        assert devices["isa-serial"] == {"_": "isa-serial", "chardev": "charserial0",
                                         "id": "serial0", "index": "0"}
        assert devices["virtio-rng-pci"]["rng"] == "objrng0"


def test_pci_addresses_on_the_command_line() -> None:
    caps = load_caps(QEMU_72)
    argv = build_command(guest("pc"), caps, monitor=MONITOR, accel="tcg")
    devices = {props(v)["_"]: props(v) for v in options(argv, "-device")}
    assert (devices["VGA"]["bus"], devices["VGA"]["addr"]) == ("pci.0", "0x2")
    assert (devices["virtio-net-pci"]["bus"], devices["virtio-net-pci"]["addr"]) == \
        ("pci.0", "0x3")
    argv = build_command(guest("q35"), caps, monitor=MONITOR, accel="tcg")
    ports = [props(v) for v in options(argv, "-device") if v.startswith("pcie-root-port")]
    assert ports[0] == {"_": "pcie-root-port", "port": "0x10", "chassis": "1", "id": "pci.1",
                        "bus": "pcie.0", "addr": "0x2", "multifunction": "on"}
    port_ids = {p["id"] for p in ports}
    devices = {props(v)["_"]: props(v) for v in options(argv, "-device")}
    assert devices["virtio-net-pci"]["bus"] in port_ids
    assert devices["virtio-net-pci"]["addr"] == "0x0"
    assert (devices["VGA"]["bus"], devices["VGA"]["addr"]) == ("pcie.0", "0x1")
    # ports come before anything that sits on them
    first_port = argv.index(options(argv, "-device")[0])
    assert all(argv.index(v) > first_port for v in options(argv, "-netdev"))


def test_caller_xml_unchanged() -> None:
    dom = guest()
    before = dom.to_xml()
    build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert dom.to_xml() == before


# --- values, secrets, escaping ---------------------------------------------------------


def test_commas_escaped() -> None:
    dom = guest(name="a,b", disk="/images/x,y.qcow2")
    argv = build_command(dom, load_caps(OLD_QEMU), monitor=Path("/run/m,n.sock"), accel="tcg")
    assert options(argv, "-name") == ["guest=a,,b,debug-threads=on"]
    assert props(options(argv, "-drive")[0])["file"] == "/images/x,y.qcow2"
    assert "file=/images/x,,y.qcow2" in options(argv, "-drive")[0]
    assert options(argv, "-qmp") == ["unix:/run/m,,n.sock,server=on,wait=off"]
    new = build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert json.loads(options(new, "-blockdev")[0])["filename"] == "/images/x,y.qcow2"


def test_vnc_loopback_and_no_secret() -> None:
    graphics = f"<graphics type='vnc' port='-1' autoport='yes' passwd='{SECRET}'/>"
    argv = build_command(guest(graphics=graphics), load_caps(QEMU_72), monitor=MONITOR,
                         accel="tcg", vnc_port=5907)
    assert options(argv, "-vnc") == ["127.0.0.1:7,password=on"]
    assert not any(SECRET in arg for arg in argv)
    assert "-display" not in argv
    explicit = "<graphics type='vnc' port='5902' listen='0.0.0.0'/>"
    argv = build_command(guest(graphics=explicit), load_caps(QEMU_72), monitor=MONITOR,
                         accel="tcg")
    assert options(argv, "-vnc") == ["0.0.0.0:2"]
    ipv6 = "<graphics type='vnc' port='5903'><listen type='address' address='::1'/></graphics>"
    argv = build_command(guest(graphics=ipv6), load_caps(QEMU_72), monitor=MONITOR,
                         accel="tcg")
    assert options(argv, "-vnc") == ["[::1]:3"]


def test_cpu_modes() -> None:
    kvm_caps = load_caps(QEMU_72, kvm=True, accelerators=["kvm", "tcg"])
    dom = guest()
    cpu = dom.ensure("cpu")
    cpu.set("mode", "host-passthrough")
    argv = build_command(dom, kvm_caps, monitor=MONITOR, accel="kvm")
    assert options(argv, "-cpu") == ["host"]
    assert props(options(argv, "-machine")[0])["accel"] == "kvm"
    with pytest.raises(Unsupported, match="host-passthrough' needs KVM"):
        build_command(dom, kvm_caps, monitor=MONITOR, accel="tcg")
    cpu.set("mode", "custom")
    model = dom.ensure("cpu/model")
    model.text = "Haswell"
    assert options(build_command(dom, kvm_caps, monitor=MONITOR, accel="tcg"),
                   "-cpu") == ["Haswell"]
    model.text = "NoSuchCPU"
    with pytest.raises(InvalidArgument, match="CPU model 'NoSuchCPU'"):
        build_command(dom, kvm_caps, monitor=MONITOR, accel="tcg")
    with pytest.raises(Unsupported, match="KVM is not usable"):
        build_command(guest(), load_caps(QEMU_72), monitor=MONITOR, accel="kvm")


def test_no_acpi_follows_libvirt() -> None:
    dom = guest()
    dom.element.remove(dom.find("features"))
    argv = build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert props(options(argv, "-machine")[0])["acpi"] == "off"


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("snippet, error, message", [
    ("<interface type='bridge'><mac address='52:54:00:00:00:09'/>"
     "<source bridge='br0'/></interface>", Unsupported, "interface type 'bridge'"),
    ("<interface type='network'><mac address='52:54:00:00:00:09'/>"
     "<source network='default'/></interface>", Unsupported, "interface type 'network'"),
    ("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
     Unsupported, "device <channel>"),
    ("<sound model='ich6'/>", Unsupported, "device <sound>"),
    ("<graphics type='spice'/>", Unsupported, "graphics type 'spice'"),
    ("<disk type='network' device='disk'><source protocol='rbd' name='p/i'/>"
     "<target dev='vdb' bus='virtio'/></disk>", Unsupported, "disk type 'network'"),
    ("<disk type='file' device='disk'><source file='/a'/><target dev='vdb' bus='usb'/></disk>",
     Unsupported, "bus 'usb'"),
    ("<disk type='file' device='disk'><driver type='qcow3'/><source file='/a'/>"
     "<target dev='vdb' bus='virtio'/></disk>", Unsupported, "format 'qcow3'"),
    ("<disk type='file' device='disk'><target dev='vdb' bus='virtio'/></disk>",
     InvalidArgument, "has no source file"),
    ("<interface type='user'><mac address='52:54:00:00:00:09'/><model type='ne2k_isa'/>"
     "</interface>", Unsupported, "NIC model 'ne2k_isa'"),
])
def test_unsupported_is_one_line(snippet: str, error: type[Exception], message: str) -> None:
    dom = guest()
    devices = dom.find("devices")
    from lxml import etree

    devices.append(etree.fromstring(snippet))
    assign_addresses(dom, "pc")
    with pytest.raises(error) as info:
        build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_device_missing_from_old_qemu() -> None:
    dom = guest()
    dom.find("devices/video/model").set("type", "bochs")
    with pytest.raises(Unsupported, match="'bochs-display'.*2.12.0"):
        build_command(dom, load_caps(OLD_QEMU), monitor=MONITOR, accel="tcg")


def test_bad_machine_and_sizes() -> None:
    dom = guest()
    dom.find("os/type").set("machine", "pc-i440fx-99.0")
    with pytest.raises(InvalidArgument, match="machine type 'pc-i440fx-99.0' not supported"):
        build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    dom = guest()
    dom.find("vcpu").text = "300"
    with pytest.raises(InvalidArgument, match="exceed the 255"):
        build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")


def test_hotplug_args() -> None:
    dom = guest()
    caps = load_caps(QEMU_72)
    from lxml import etree

    disk = etree.fromstring("<disk type='file' device='disk'><driver type='raw'/>"
                            "<source file='/images/extra.img'/><target dev='vdb' bus='virtio'/>"
                            "<alias name='virtio-disk1'/></disk>")
    dom.find("devices").append(disk)
    assign_addresses(dom, "pc", hotplug=True)
    args = device_args_for_hotplug(dom, disk, caps, node_index=7)
    assert [n["node-name"] for n in args.blockdevs] == ["libvirt-7-storage", "libvirt-7-format"]
    assert args.device["driver"] == "virtio-blk-pci" and args.device["id"] == "virtio-disk1"
    assert args.device["drive"] == "libvirt-7-format" and args.device["bus"] == "pci.0"
    assert "bootindex" not in args.device


# --- the generated argv starts under the installed QEMU ----------------------------------


@pytest.fixture(scope="module")
def installed_caps(tmp_path_factory: pytest.TempPathFactory) -> QemuCaps:
    binary = need_tool("qemu-system-x86_64", "Debian package qemu-system-x86")
    return probe(binary, tmp_path_factory.mktemp("probe"))


@pytest.fixture
def launched() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by a test; each is killed by its PID and reaped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


async def _qmp(socket: Path, ids: list[str], plug: DeviceArgs | None,
               ) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    """query-status, hot-plug ``plug``, then (parent bus path, devfn) of each id; quit."""
    from qemu.qmp import QMPClient

    client = QMPClient("hvmon-test")
    placed: dict[str, tuple[str, int]] = {}
    async with asyncio.timeout(20):
        await client.connect(str(socket))
        try:
            status = await client.execute("query-status")
            if plug is not None:
                for node in plug.blockdevs:
                    await client.execute("blockdev-add", node)
                if plug.netdev is not None:
                    await client.execute("netdev_add", plug.netdev)
                await client.execute("device_add", plug.device)
            for qid in ids:
                path = f"/machine/peripheral/{qid}"
                bus = await client.execute("qom-get", {"path": path, "property": "parent_bus"})
                devfn = await client.execute("qom-get", {"path": path, "property": "addr"})
                placed[qid] = (str(bus), int(devfn))
            with contextlib.suppress(Exception):
                await client.execute("quit")
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
    return status, placed


@pytest.mark.parametrize("machine, fixture", [("pc", None), ("q35", None),
                                              ("pc", OLD_QEMU)])
def test_argv_starts_under_installed_qemu(machine: str, fixture: str | None, tmp_path: Path,
                                          installed_caps: QemuCaps,
                                          launched: list[subprocess.Popen[bytes]]) -> None:
    """Start the argv (TCG, 64 MiB, a 16 MiB qcow2): QEMU waits in prelaunch, devices sit at
    the addresses of the XML. The old fixture's -drive argv runs too (QEMU 7.2 still has
    pc-i440fx-2.12 and -drive)."""
    qemu_img = need_tool("qemu-img", "Debian package qemu-utils")
    disk = tmp_path / "x.qcow2"
    subprocess.run([qemu_img, "create", "-f", "qcow2", str(disk), "16M"], check=True,
                   capture_output=True)
    (tmp_path / "seed.iso").write_bytes(b"\0" * 2048)
    caps = installed_caps if fixture is None else load_caps(fixture,
                                                            binary=installed_caps.binary)
    graphics = f"<graphics type='vnc' passwd='{SECRET}'/>"
    dom = guest(machine, disk=str(disk), graphics=graphics, tmp=tmp_path)
    monitor = tmp_path / "m.sock"
    port = _free_vnc_port()
    argv = build_command(dom, caps, monitor=monitor, accel="tcg", vnc_port=port)
    assert ("-blockdev" in argv) == (fixture is None)
    log = open(tmp_path / "qemu.log", "wb")  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    launched.append(proc)
    wait_for(lambda: True if monitor.exists() or proc.poll() is not None else None, 20,
             "the QMP socket")
    assert proc.poll() is None, (tmp_path / "qemu.log").read_text()
    ids = {"net0": "devices/interface", "virtio-disk0": "devices/disk", "balloon0":
           "devices/memballoon", "rng0": "devices/rng", "video0": "devices/video"}
    # hot-plug a NIC: it gets a free slot (a spare root port on q35), nothing else moves
    before = dom.to_xml()
    nic = etree.SubElement(dom.find("devices"), "interface", type="user")
    etree.SubElement(nic, "mac", address="52:54:00:12:34:57")
    etree.SubElement(nic, "model", type="virtio")
    etree.SubElement(nic, "alias", name="net1")
    assign_addresses(dom, machine, hotplug=True)
    # only the new element changed: removing it gives the document back
    assert dom.to_xml().replace(etree.tostring(nic, encoding="unicode"), "") == before
    plug = device_args_for_hotplug(dom, nic, caps, node_index=9)
    ids["net1"] = "devices/interface[alias]"
    status, placed = asyncio.run(_qmp(monitor, list(ids), plug))
    assert status["status"] == "prelaunch" and status["running"] is False
    for qid, path in ids.items():
        address = pci_address_of(dom.element.find(path))
        bus, devfn = placed[qid]
        assert bus.rsplit("/", 1)[-1] == bus_id(address, machine_family(machine)), qid
        assert devfn == address.slot * 8 + address.function, qid
    proc.wait(timeout=20)
    assert proc.returncode == 0, (tmp_path / "qemu.log").read_text()
    assert SECRET not in (tmp_path / "qemu.log").read_text()


def _free_vnc_port() -> int:
    import socket

    for port in range(5990, 6100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free VNC port between 5990 and 6100")


def test_direct_kernel_boot_and_reboot_policy() -> None:
    dom = guest()
    os_el = dom.find("os")
    from lxml import etree

    etree.SubElement(os_el, "kernel").text = "/boot/vmlinuz"
    etree.SubElement(os_el, "initrd").text = "/boot/initrd.img"
    etree.SubElement(os_el, "cmdline").text = "console=ttyS0 quiet,x"
    dom.on_reboot = "destroy"
    argv = build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")
    assert options(argv, "-kernel") == ["/boot/vmlinuz"]
    assert options(argv, "-initrd") == ["/boot/initrd.img"]
    assert options(argv, "-append") == ["console=ttyS0 quiet,x"]  # a plain argument
    assert "-no-reboot" in argv
    os_el.remove(os_el.find("kernel"))
    with pytest.raises(InvalidArgument, match="need a <kernel>"):
        build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")


@pytest.mark.parametrize("path, what", [("os/loader", "UEFI"), ("cpu/numa", "NUMA"),
                                        ("memoryBacking", "huge pages"),
                                        ("features/hyperv", "Hyper-V")])
def test_guest_visible_features_refused(path: str, what: str) -> None:
    dom = guest()
    dom.ensure(path)
    with pytest.raises(Unsupported, match=what):
        build_command(dom, load_caps(QEMU_72), monitor=MONITOR, accel="tcg")


def test_libvirt_corpus_builds_or_refuses_cleanly(compat_dir: Path) -> None:
    """Every real libvirt domain document: an argv, or one typed one-line error."""
    from hvmon.core.errors import HvmonError

    caps = load_caps(QEMU_72)
    built = 0
    for path in sorted((compat_dir / "libvirt-xml" / "domain").glob("*.xml")):
        dom = Domain.from_xml(path.read_text())
        try:
            assign_addresses(dom, dom.machine or "pc")
            argv = build_command(dom, caps, monitor=MONITOR, accel="tcg", vnc_port=5900)
        except HvmonError as exc:
            assert "\n" not in str(exc), path.name
            continue
        built += 1
        assert "-nodefaults" in argv and all(isinstance(a, str) for a in argv)
    assert built >= 10
