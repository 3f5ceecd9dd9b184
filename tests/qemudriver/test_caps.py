"""Capability probing of the installed QEMU, the cache, and the XML built from caps."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from toolcheck import need_tool

from hvmon.core.drivers.qemu import caps as caps_mod
from hvmon.core.drivers.qemu.caps import (
    CapsCache,
    MachineType,
    QemuCaps,
    capabilities_xml,
    domcapabilities_xml,
    find_binary,
    probe,
)
from hvmon.core.drivers.qemu.machine import canonical_machine, machine_family
from hvmon.core.errors import InvalidArgument, OperationFailed, Unsupported
from hvmon.core.xml.parser import parse_xml
from hvmon.core.xml.schema import validate

from .conftest import OLD_QEMU, QEMU_72, load_caps

HOST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"




@pytest.fixture(scope="module")
def qemu_binary() -> str:
    return need_tool("qemu-system-x86_64", "Debian package qemu-system-x86")


@pytest.fixture(scope="module")
def probed(qemu_binary: str, tmp_path_factory: pytest.TempPathFactory) -> QemuCaps:
    """The installed QEMU's capabilities, probed once for this module."""
    return probe(qemu_binary, tmp_path_factory.mktemp("probe"))


@pytest.fixture
def counting_probe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the real probe with a fixture-backed one that records each call."""
    calls: list[str] = []
    fixture = load_caps(QEMU_72)

    def fake(binary: str, workdir: Path, timeout: float = 30.0) -> QemuCaps:
        calls.append(binary)
        return QemuCaps.from_dict({**fixture.to_dict(), "binary": binary})

    monkeypatch.setattr(caps_mod, "probe", fake)
    return calls


# --- probing the real binary ------------------------------------------------------


def test_probe_installed_qemu(probed: QemuCaps, qemu_binary: str) -> None:
    version = subprocess.run([qemu_binary, "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert f"version {probed.version_string}" in version
    assert probed.arch == "x86_64"
    assert probed.version_number == (probed.version[0] * 1_000_000 + probed.version[1] * 1000
                                     + probed.version[2])
    aliases = {m.alias: m.name for m in probed.machines if m.alias}
    assert aliases["pc"].startswith("pc-i440fx-") and aliases["q35"].startswith("pc-q35-")
    assert probed.default_machine is not None and probed.default_machine.alias == "pc"
    assert {"query-status", "blockdev-add", "device_add", "cont"} <= probed.commands
    assert {"virtio-blk-pci", "virtio-net-pci", "pcie-root-port", "isa-serial"} <= probed.devices
    assert "rng-random" in probed.objects and "iothread" in probed.objects
    assert "qemu64" in probed.cpu_models
    assert probed.blockdev  # QEMU 7.2 >= the 4.2 cut-off
    assert probed.accelerators[-1] == "tcg"
    # kvm is claimed only when /dev/kvm really opens
    assert probed.kvm == (caps_mod.kvm_device_usable() and "kvm" in probed.accelerators)
    assert probed.kvm or probed.kvm_reason


def test_probe_leaves_no_process_or_socket(qemu_binary: str, tmp_path: Path) -> None:
    probe(qemu_binary, tmp_path)
    assert not (tmp_path / "probe.sock").exists()
    # no process anywhere still runs with this probe's socket on its command line
    marker = str(tmp_path / "probe.sock").encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        assert marker not in cmdline, f"probe process {proc.name} survived"


def test_probe_failure_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text("#!/bin/sh\necho 'qemu: could not load PC BIOS' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(OperationFailed) as info:
        probe(str(fake), tmp_path / "work", timeout=10)
    assert "\n" not in str(info.value)
    assert "could not load PC BIOS" in str(info.value)
    with pytest.raises(OperationFailed, match="cannot run QEMU binary"):
        probe(str(tmp_path / "missing"), tmp_path / "work")


def test_probe_timeout_kills_the_process(tmp_path: Path) -> None:
    """A binary that never opens its socket: the probe gives up and kills it by PID."""
    fake = tmp_path / "qemu-system-x86_64"
    pidfile = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    fake.chmod(0o755)
    with pytest.raises(OperationFailed, match="no answer within"):
        probe(str(fake), tmp_path / "work", timeout=0.5)
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists()


def test_find_binary(qemu_binary: str) -> None:
    assert os.path.realpath(find_binary()) == os.path.realpath(qemu_binary)
    with pytest.raises(Unsupported, match="qemu-system-nosucharch"):
        find_binary("nosucharch")


def test_caps_roundtrip(probed: QemuCaps) -> None:
    again = QemuCaps.from_dict(json.loads(json.dumps(probed.to_dict())))
    assert again == probed
    assert again.blockdev == probed.blockdev and again.sandbox == probed.sandbox


# --- the cache -------------------------------------------------------------------


def _fake_binary(tmp_path: Path, size: int = 10) -> Path:
    binary = tmp_path / "bin" / "qemu-system-x86_64"
    binary.parent.mkdir(exist_ok=True)
    binary.write_bytes(b"x" * size)
    return binary


def test_cache_hit_from_memory_and_file(tmp_path: Path, counting_probe: list[str]) -> None:
    binary = str(_fake_binary(tmp_path))
    cache = CapsCache(tmp_path / "cache")
    first = cache.get(binary)
    assert cache.get(binary) == first
    assert len(counting_probe) == 1
    # a new cache object (a daemon restart) reads the file instead of probing
    again = CapsCache(tmp_path / "cache").get(binary)
    assert again == first and len(counting_probe) == 1
    assert json.loads(cache.path_for(binary).read_text())["key"]["path"] == \
        os.path.realpath(binary)


def test_cache_invalidated_by_mtime_and_size(tmp_path: Path, counting_probe: list[str]) -> None:
    path = _fake_binary(tmp_path)
    binary = str(path)
    cache = CapsCache(tmp_path / "cache")
    cache.get(binary)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    cache.get(binary)
    assert len(counting_probe) == 2
    path.write_bytes(b"y" * 20)  # an upgrade: another size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    CapsCache(tmp_path / "cache").get(binary)
    assert len(counting_probe) == 3


def test_cache_corrupt_file_reprobes(tmp_path: Path, counting_probe: list[str]) -> None:
    binary = str(_fake_binary(tmp_path))
    cache = CapsCache(tmp_path / "cache")
    cache.get(binary)
    for garbage in ("{not json", json.dumps({"key": cache.key_for(binary), "caps": {"x": 1}}),
                    "[]", ""):
        cache.path_for(binary).write_text(garbage)
        assert CapsCache(tmp_path / "cache").get(binary).binary == binary
    assert len(counting_probe) == 5
    # the last probe rewrote a good file
    assert CapsCache(tmp_path / "cache").get(binary).version == (7, 2, 22)
    assert len(counting_probe) == 5


def test_cache_unreadable_dir_is_not_fatal(tmp_path: Path, counting_probe: list[str]) -> None:
    binary = str(_fake_binary(tmp_path))
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the directory should be")
    cache = CapsCache(blocker / "sub")  # cannot even be created: probe, keep in memory
    assert cache.get(binary).binary == binary
    assert cache.get(binary).binary == binary
    assert len(counting_probe) == 1
    cache = CapsCache(tmp_path / "ok")
    cache.get(binary)
    cache.path_for(binary).unlink()
    cache.path_for(binary).mkdir()  # unreadable as a file
    assert CapsCache(tmp_path / "ok").get(binary).binary == binary
    assert len(counting_probe) == 3


def test_cache_with_real_qemu(qemu_binary: str, tmp_path: Path) -> None:
    cache = CapsCache(tmp_path)
    first = cache.get(qemu_binary)
    again = CapsCache(tmp_path)
    assert again.get(qemu_binary) == first
    assert cache.probes == 1 and again.probes == 0


# --- machine types -----------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("pc", "pc-i440fx-7.2"), ("q35", "pc-q35-7.2"), (None, "pc-i440fx-7.2"),
    ("", "pc-i440fx-7.2"), ("pc-i440fx-2.12", "pc-i440fx-2.12"), ("pc-q35-5.2", "pc-q35-5.2"),
])
def test_canonical_machine(name: str | None, expected: str) -> None:
    assert canonical_machine(name, load_caps(QEMU_72)) == expected


def test_canonical_machine_old_qemu() -> None:
    old = load_caps(OLD_QEMU)
    assert canonical_machine("pc", old) == "pc-i440fx-2.12"
    assert canonical_machine("q35", old) == "pc-q35-2.12"
    with pytest.raises(InvalidArgument, match="'pc-q35-7.2' not supported by"):
        canonical_machine("pc-q35-7.2", old)


def test_unknown_machine_is_one_line() -> None:
    with pytest.raises(InvalidArgument) as info:
        canonical_machine("pc-i440fx-99.0", load_caps(QEMU_72))
    text = str(info.value)
    assert "\n" not in text and "supported: pc, q35" in text and "more)" in text


def test_machine_family() -> None:
    assert machine_family("pc") == "i440fx"
    assert machine_family("pc-i440fx-7.2") == "i440fx"
    assert machine_family("pc-1.3") == "i440fx"
    assert machine_family("q35") == "q35"
    assert machine_family("pc-q35-2.12") == "q35"
    assert machine_family("microvm") == "other"
    assert machine_family("isapc") == "other"


# --- XML documents ------------------------------------------------------------------


def test_capabilities_xml(probed: QemuCaps) -> None:
    text = capabilities_xml(probed, host_uuid=HOST_UUID, host_arch="x86_64",
                            cpu_model="qemu64")
    root = parse_xml(text)
    validate(root, "capabilities")
    assert root.findtext("host/uuid") == HOST_UUID
    arch = root.find("guest/arch")
    assert arch is not None and arch.get("name") == "x86_64"
    assert arch.findtext("emulator") == probed.binary
    machines = {(m.text, m.get("canonical")) for m in arch.findall("machine")}
    assert ("pc", "pc-i440fx-7.2") in machines and ("q35", "pc-q35-7.2") in machines
    assert ("pc-i440fx-7.2", None) in machines
    assert ("none", None) not in machines
    assert [m.text for m in arch.findall("machine")][:2] == ["pc-i440fx-7.2", "pc"]
    names = [m.text for m in arch.findall("machine") if m.text.startswith("pc-i440fx-2.")]
    assert names.index("pc-i440fx-2.9") < names.index("pc-i440fx-2.10")
    types = [d.get("type") for d in arch.findall("domain")]
    assert types == (["qemu", "kvm"] if probed.kvm else ["qemu"])


def test_capabilities_xml_kvm_only_when_usable() -> None:
    no_kvm = load_caps(QEMU_72)
    with_kvm = QemuCaps.from_dict({**no_kvm.to_dict(), "kvm": True,
                                   "accelerators": ["kvm", "tcg"]})
    for caps, expected in ((no_kvm, ["qemu"]), (with_kvm, ["qemu", "kvm"])):
        root = parse_xml(capabilities_xml(caps, host_uuid=HOST_UUID, host_arch="x86_64",
                                          cpu_model="qemu64"))
        validate(root, "capabilities")
        assert [d.get("type") for d in root.iter("domain")] == expected


@pytest.mark.parametrize("machine, canonical", [(None, "pc-i440fx-7.2"), ("q35", "pc-q35-7.2")])
def test_domcapabilities_xml(machine: str | None, canonical: str) -> None:
    caps = load_caps(QEMU_72)
    root = etree.fromstring(domcapabilities_xml(caps, machine, "qemu"))
    assert root.tag == "domainCapabilities"
    assert root.findtext("path") == caps.binary
    assert root.findtext("domain") == "qemu"
    assert root.findtext("machine") == canonical
    assert root.findtext("arch") == "x86_64"
    assert int(root.find("vcpu").get("max")) == caps.machine(canonical).cpu_max
    buses = [v.text for v in root.findall("devices/disk/enum[@name='bus']/value")]
    assert "virtio" in buses and ("ide" in buses) == (machine is None)
    assert [v.text for v in root.findall("devices/graphics/enum/value")] == ["vnc"]
    assert root.find("cpu/mode[@name='host-passthrough']").get("supported") == "no"
    assert root.find("features/backingStoreInput").get("supported") == "yes"


def test_domcapabilities_errors() -> None:
    caps = load_caps(QEMU_72)
    with pytest.raises(Unsupported, match="KVM is not usable"):
        domcapabilities_xml(caps, None, "kvm")
    with pytest.raises(InvalidArgument, match="virtualization type 'xen'"):
        domcapabilities_xml(caps, None, "xen")
    with pytest.raises(InvalidArgument, match="machine type 'bogus'"):
        domcapabilities_xml(caps, "bogus", "qemu")


def test_old_qemu_fixture_has_no_blockdev() -> None:
    old = load_caps(OLD_QEMU)
    assert old.version == (2, 12, 0) and old.version_number == 2_012_000
    assert "blockdev-add" in old.commands and not old.blockdev
    newer_without_command = QemuCaps.from_dict(
        {**load_caps(QEMU_72).to_dict(),
         "commands": sorted(load_caps(QEMU_72).commands - {"blockdev-add"})})
    assert not newer_without_command.blockdev
    assert MachineType("pc-i440fx-2.12", "pc", True, False, 255) in old.machines
