"""Graceful shutdown and reboot of a tiny real guest (Debian kernel + busybox ``acpid``).

The guest (:mod:`guestimage`) powers off on the ACPI power button and prints a marker on
its serial console (a file) each time it boots, so the tests see the boot, the power-off
and the second boot of a reboot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolcheck import need_tool

import hvmon
from hvmon.core.events import LifecycleEvent, ShutdownDetail, StoppedDetail
from hvmon.core.types import DomainState, ShutoffReason

from .conftest import QEMU_PACKAGES, guest_xml
from .guestimage import BOOT_MARKER, GuestImage, tiny_guest_image, tiny_guest_xml
from .test_lifecycle import drain, events_of

Opener = Callable[..., hvmon.Connection]
#: a TCG boot of Debian's kernel takes a few seconds; a busy CI machine may be slower
BOOT_TIMEOUT = 120.0
#: how long the KVM probe waits for the tiny guest before using TCG
KVM_PROBE_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def tiny_guest() -> GuestImage:
    """The kernel + busybox initramfs, built once per machine (see guestimage)."""
    return tiny_guest_image()


def _kvm_boots(image: GuestImage, workdir: Path) -> str:
    """'' when KVM boots the tiny guest here, else why not (QEMU started and killed by PID)."""
    qemu = need_tool("qemu-system-x86_64", QEMU_PACKAGES)
    serial = workdir / "kvm-probe.serial"
    argv = [qemu, "-machine", "pc,accel=kvm", "-m", "128", "-nodefaults", "-no-user-config",
            "-display", "none", "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", image.cmdline, "-serial", f"file:{serial}"]
    log = workdir / "kvm-probe.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    try:
        end = time.monotonic() + KVM_PROBE_TIMEOUT
        while time.monotonic() < end and proc.poll() is None:
            if serial.is_file() and BOOT_MARKER in serial.read_text(errors="replace"):
                return ""
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"no boot marker within {KVM_PROBE_TIMEOUT:g} s"


@pytest.fixture(scope="session")
def tiny_guest_type(domain_type: str, tiny_guest: GuestImage,
                    tmp_path_factory: pytest.TempPathFactory) -> str:
    """``domain_type``, unless KVM opens here but cannot boot a kernel (nested hosts): TCG.

    The probe's answer is kept next to the image, keyed on the QEMU binary and the
    host kernel, so it costs its time once per machine.
    """
    if domain_type != "kvm":
        return domain_type
    qemu = Path(need_tool("qemu-system-x86_64", QEMU_PACKAGES)).resolve()
    stat = qemu.stat()
    key = hashlib.sha256(f"{qemu}:{stat.st_size}:{stat.st_mtime_ns}:{os.uname().release}"
                         .encode()).hexdigest()[:16]
    answer = tiny_guest.kernel.parent / f"kvm-probe-{key}"
    try:
        why = answer.read_text()
    except OSError:
        why = _kvm_boots(tiny_guest, tmp_path_factory.mktemp("kvm-probe"))
        with contextlib.suppress(OSError):
            answer.write_text(why)
    if why:
        print(f"\nKVM cannot boot the tiny guest here ({why}): it runs under TCG")
        return "qemu"
    return "kvm"


def boots(serial: Path) -> int:
    """How many times the guest has booted (markers on its serial console)."""
    try:
        return serial.read_text(errors="replace").count(BOOT_MARKER)
    except FileNotFoundError:
        return 0


def wait_boots(serial: Path, count: int, timeout: float = BOOT_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while boots(serial) < count:
        if time.monotonic() > end:
            tail = serial.read_text(errors="replace")[-600:] if serial.is_file() else ""
            pytest.fail(f"guest booted {boots(serial)} times, expected {count} within "
                        f"{timeout:g} s; serial console ends with:\n{tail}")
        time.sleep(0.1)


@pytest.fixture
def running_guest(open_qemu: Opener, qemu_root: Path, tiny_guest: GuestImage,
                  tiny_guest_type: str) -> Iterator[tuple[hvmon.Connection, hvmon.Domain, Path]]:
    """(connection, domain, serial log) of the tiny guest, booted and handling ACPI."""
    conn = open_qemu(shutdown_timeout=BOOT_TIMEOUT, reboot_timeout=BOOT_TIMEOUT)
    serial = qemu_root / "tiny.serial"
    dom = conn.define_domain_xml(tiny_guest_xml("tiny", tiny_guest_type, tiny_guest, serial))
    dom.create()
    wait_boots(serial, 1)  # acpid runs: the power button is handled from now on
    yield conn, dom, serial  # qemu_root's finaliser kills a QEMU left running by PID


def test_shutdown_powers_the_guest_off_through_acpi(
        running_guest: tuple[hvmon.Connection, hvmon.Domain, Path]) -> None:
    conn, dom, serial = running_guest
    seen = events_of(conn)
    dom.shutdown()  # returns once the guest powered off
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.SHUTDOWN)
    assert "powering off" in serial.read_text(errors="replace")
    # libvirt's details: the guest itself finished the power-off (QMP SHUTDOWN guest=true)
    assert drain(seen, 2) == [("tiny", LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST),
                              ("tiny", LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN)]
    assert seen.empty() and conn.driver.running_pids() == {}
    assert dom.get_id() == -1 and dom.is_persistent()


def test_reboot_resets_the_guest_which_keeps_running(
        running_guest: tuple[hvmon.Connection, hvmon.Domain, Path]) -> None:
    conn, dom, serial = running_guest
    seen = events_of(conn)
    pid, ident = conn.driver.running_pids()["tiny"], dom.get_id()
    dom.reboot()
    wait_boots(serial, 2)
    assert "powering off" in serial.read_text(errors="replace")  # the button, then a reset
    assert dom.state()[0] == DomainState.RUNNING
    assert conn.driver.running_pids() == {"tiny": pid} and dom.get_id() == ident
    # the guest still handles the button after the reboot: a shutdown now ends it
    dom.shutdown()
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.SHUTDOWN)
    events = drain(seen, 2)  # a reboot itself is no lifecycle event, as in libvirt
    assert events == [("tiny", LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST),
                      ("tiny", LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN)]
    assert seen.empty()


def test_reboot_and_shutdown_need_a_running_guest(open_qemu: Opener,
                                                  domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("idle", domain_type))
    for call in (dom.reboot, dom.shutdown):  # shut off
        with pytest.raises(hvmon.OperationInvalid, match="'idle' is not running"):
            call()
    dom.create_with_flags(paused=True)
    for call in (dom.reboot, dom.shutdown):
        with pytest.raises(hvmon.OperationInvalid, match="'idle' is not running"):
            call()
    assert dom.state()[0] == DomainState.PAUSED
    dom.destroy()


def test_a_real_guest_releases_a_hot_unplugged_nic_and_nothing_moves(
        running_guest: tuple[hvmon.Connection, hvmon.Domain, Path]) -> None:
    from .test_hotplug import qemu_slots
    from .test_lifecycle import pci_slots

    conn, dom, _serial = running_guest
    before = pci_slots(dom.xml_desc())
    dom.attach_device("<interface type='user'><mac address='52:54:00:00:be:ef'/>"
                      "<model type='virtio'/></interface>")
    assert "52:54:00:00:be:ef" in str(pci_slots(dom.xml_desc()))
    conn.driver.hotplug.timeout = BOOT_TIMEOUT  # the guest's acpiphp ejects it
    dom.detach_device("<interface type='user'><mac address='52:54:00:00:be:ef'/></interface>")
    assert pci_slots(dom.xml_desc()) == before  # gone, and nobody else moved
    assert "net0" not in qemu_slots(conn, "tiny")  # QEMU dropped the device too
    assert dom.state()[0] == DomainState.RUNNING
