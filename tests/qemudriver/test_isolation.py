"""QEMU isolation: runs as the configured user, seccomp, no leaked fds, mount namespace, DAC."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolcheck import need_tool

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.drivers.qemu.isolation import cgroups
from hvmon.core.drivers.qemu.isolation.config import load
from hvmon.core.drivers.qemu.isolation.probe import probe
from hvmon.core.errors import NoConnect, OperationFailed
from hvmon.core.types import ShutoffReason

from .conftest import guest_xml
from .test_networks import in_ns, make_ns, nat_xml, net_tools  # noqa: F401  (fixtures)

Opener = Callable[..., hvmon.Connection]
NOBODY = 65534
#: a uid/gid with no account: another guest's user in the DAC check
OTHER = 65533


def configure(root: Path, text: str) -> None:
    """Write ``etc/qemu.conf``; let unprivileged QEMU traverse the (0700) temp root."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/qemu.conf").write_text(text)
    os.chmod(root, 0o711)


def qemu_pid(root: Path, name: str) -> int:
    status = process.read_status(root / f"run/qemu/{name}.status.json")
    assert status is not None
    return status.pid


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(f"DAC needs the daemon to run as root; {probe().line()}")


def test_guest_runs_as_the_configured_user_with_the_sandbox_and_its_disk_is_handed_back(
        open_qemu: Opener, qemu_root: Path, disk_image: Callable[[str], Path],
        domain_type: str) -> None:
    need_root()
    configure(qemu_root, 'user = "nobody"\ngroup = "nogroup"\n')
    disk = disk_image("dac")
    before = os.stat(disk)
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("dac", domain_type, disk))
    dom.create()
    status = proc_status(qemu_pid(qemu_root, "dac"))
    assert status["Uid"].split() == [str(NOBODY)] * 4
    assert status["Gid"].split() == [str(NOBODY)] * 4
    assert status["Seccomp"] == "2"  # -sandbox on,...: QEMU 7.2 here has it
    running = os.stat(disk)
    assert (running.st_uid, running.st_gid, stat.S_IMODE(running.st_mode)) == \
        (NOBODY, NOBODY, 0o600)
    # another guest's user (another uid) cannot open this guest's disk
    other = subprocess.run(["/usr/bin/head", "-c", "1", str(disk)],
                           user=OTHER, group=OTHER, extra_groups=[], capture_output=True,
                           timeout=30, check=False)
    assert other.returncode != 0 and b"Permission denied" in other.stderr
    dom.destroy()
    after = os.stat(disk)
    assert (after.st_uid, after.st_gid, after.st_mode) == \
        (before.st_uid, before.st_gid, before.st_mode)
    assert not (qemu_root / "run/qemu/dac.dac.json").exists()


@pytest.mark.parametrize("conf", ["", 'user = "nobody"\ngroup = "nogroup"\n'],
                         ids=["as-daemon", "as-nobody"])
def test_qemu_inherits_only_the_descriptors_the_guest_needs(
        open_qemu: Opener, qemu_root: Path, disk_image: Callable[[str], Path],
        domain_type: str, conf: str) -> None:
    if conf:
        need_root()
    configure(qemu_root, conf)
    disk = disk_image("fds")
    sentinel = qemu_root / "daemon-secret"
    fd = os.open(sentinel, os.O_RDWR | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)  # a careless daemon fd: must still not reach QEMU
    try:
        conn = open_qemu()
        dom = conn.define_domain_xml(guest_xml("fds", domain_type, disk))
        dom.create()
        pid = qemu_pid(qemu_root, "fds")
        fds = {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
    finally:
        os.close(fd)
    log = str(qemu_root / "log/qemu/fds.log")
    assert fds[0] == "/dev/null" and fds[1] == fds[2] == log
    allowed = {"/dev/null", log, str(disk), "/dev/kvm", "/dev/net/tun", "/dev/urandom"}
    unexpected = {n: target for n, target in fds.items()
                  if target not in allowed
                  and not target.startswith(("socket:", "anon_inode:", "pipe:"))}
    print(f"\nQEMU pid {pid} descriptors: {fds}")
    assert not unexpected, f"QEMU holds descriptors it does not need: {unexpected}"
    assert str(sentinel) not in fds.values()
    # the QMP listener and the driver's connection to it; no daemon socket
    assert sum(target.startswith("socket:") for target in fds.values()) == 2


def test_each_qemu_gets_its_own_mount_namespace(open_qemu: Opener, qemu_root: Path,
                                                domain_type: str) -> None:
    found = probe()
    print(f"\n{found.line()}")
    if not found.mount_namespace:
        pytest.skip(f"no mount namespace here: {found.line()}")
    configure(qemu_root, 'user = "nobody"\nnamespaces = ["mount"]\n')
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("ns", domain_type))
    dom.create()
    pid = qemu_pid(qemu_root, "ns")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    # a private /dev: the basic character devices and what the guest was given, no more
    private = set(os.listdir(f"/proc/{pid}/root/dev"))
    given = {"kvm"} if domain_type == "kvm" else set()
    assert private == {"null", "zero", "full", "random", "urandom"} | given
    assert len(os.listdir("/dev")) > len(private)  # the daemon's /dev is untouched
    assert proc_status(pid)["Uid"].split()[0] == str(NOBODY)
    assert proc_status(pid)["Seccomp"] == "2"
    dom.destroy()


def test_embed_roots_keep_todays_behaviour(open_qemu: Opener, qemu_root: Path,
                                           domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("plain", domain_type))
    dom.create()
    pid = qemu_pid(qemu_root, "plain")
    assert proc_status(pid)["Uid"].split()[0] == str(os.geteuid())
    assert proc_status(pid)["Seccomp"] == "2"  # the sandbox does not depend on qemu.conf
    assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    dom.destroy()


@pytest.mark.parametrize(("text", "wording"), [
    ("user = ", "not valid TOML"),
    ('user = "no-such-user-hvmon"\n', "user 'no-such-user-hvmon' does not exist"),
    ('group = "nogroup"\n', "'group' needs 'user'"),
    ('namespaces = ["net"]\n', "'namespaces' must be a list of mount, pid"),
    ("colour = 1\n", "unknown setting(s) colour"),
])
def test_a_bad_qemu_conf_refuses_the_connection_in_one_line(
        open_qemu: Opener, qemu_root: Path, text: str, wording: str) -> None:
    configure(qemu_root, text)
    with pytest.raises(NoConnect, match=r"qemu\.conf") as caught:
        open_qemu()
    assert wording in str(caught.value) and "\n" not in str(caught.value)


def test_system_defaults_are_the_secure_ones(tmp_path: Path) -> None:
    conf = load(tmp_path / "qemu", system=True)
    if conf.error:  # no hvmon-qemu user on this host: starts are refused in one line
        assert "user 'hvmon-qemu' does not exist" in conf.error and "\n" not in conf.error
    else:
        assert conf.uid != 0 and conf.namespaces == ("mount",)
    embed = load(tmp_path / "qemu", system=False)
    assert embed.uid is None and embed.namespaces == () and not embed.error


def test_a_missing_system_user_refuses_the_start_not_the_connection(
        qemu_root: Path) -> None:
    from hvmon.core.drivers.qemu.isolation.config import IsolationConfig
    from hvmon.core.drivers.qemu.isolation.hook import IsolationHook
    from hvmon.core.drivers.qemu.paths import QemuPaths

    hook = IsolationHook(QemuPaths.under(qemu_root), IsolationConfig(error="no hvmon-qemu"))
    with pytest.raises(OperationFailed, match="no hvmon-qemu"):
        hook.prepare(None, None)  # type: ignore[arg-type]


def test_the_probe_reports_in_one_line() -> None:
    line = probe().line()
    assert line.startswith("isolation probe: ") and "\n" not in line
    assert "mount-namespace=" in line and "cgroup-v2-controllers=" in line


TUNING = """<cputune><shares>512</shares></cputune>
  <memtune><hard_limit unit='MiB'>512</hard_limit></memtune>
  <blkiotune><device><path>{dev}</path><read_bytes_sec>10485760</read_bytes_sec></device>
  </blkiotune>"""


def tuned_xml(name: str, kind: str, tuning: str) -> str:
    return guest_xml(name, kind).replace("<vcpu>1</vcpu>", f"<vcpu>1</vcpu>\n  {tuning}")


@pytest.fixture
def cgroup_cleanup() -> Iterator[list[str]]:
    """Guest uuids whose cgroups go when the test ends (list it first: it ends last,
    after qemu_root's finaliser stopped the QEMUs a failed test left)."""
    uuids: list[str] = []
    yield uuids
    for uuid in uuids:
        cgroups.remove(uuid)
        for directory in cgroups.guest_dirs(uuid).values():  # hvmon-qemu/, once empty
            with contextlib.suppress(OSError):
                directory.parent.rmdir()


def need_cgroups() -> None:
    lacking = cgroups.missing()
    if lacking:
        pytest.skip(f"no cgroup v1 {', '.join(lacking)}: {probe().line()}")


def test_each_guest_gets_its_cgroup_with_its_tuning_and_cpu_accounting(
        cgroup_cleanup: list[str], open_qemu: Opener, qemu_root: Path, domain_type: str) -> None:
    need_cgroups()
    configure(qemu_root, "cgroups = true\n")
    block = next(p for p in ("/dev/loop0", "/dev/vda", "/dev/sda") if Path(p).is_block_device())
    conn = open_qemu()
    dom = conn.define_domain_xml(tuned_xml("cg", domain_type, TUNING.format(dev=block)))
    cgroup_cleanup.append(dom.uuid)
    dom.create()
    pid = qemu_pid(qemu_root, "cg")
    dirs = cgroups.guest_dirs(dom.uuid)
    assert cgroups.CPUSET not in dirs or not dirs[cgroups.CPUSET].exists()  # <numatune> only
    for controller in cgroups.CONTROLLERS:
        directory = dirs[controller]
        assert str(pid) in (directory / "cgroup.procs").read_text().split(), controller
    assert (dirs["cpu"] / "cpu.shares").read_text().strip() == "512"
    assert int((dirs["memory"] / "memory.limit_in_bytes").read_text()) == 512 * 1024 * 1024
    rdev = os.stat(block).st_rdev
    assert f"{os.major(rdev)}:{os.minor(rdev)} 10485760" in \
        (dirs["blkio"] / "blkio.throttle.read_bps_device").read_text()
    stats = conn.get_all_domain_stats()[0].stats
    usage = int((dirs["cpuacct"] / "cpuacct.usage").read_text())
    assert 0 < stats["cpu.time"] <= usage
    dom.destroy()
    assert not any(directory.exists() for directory in dirs.values())


def test_tuning_this_host_cannot_apply_refuses_the_start_in_one_line(
        cgroup_cleanup: list[str], open_qemu: Opener, qemu_root: Path, domain_type: str) -> None:
    need_cgroups()
    configure(qemu_root, "cgroups = true\n")
    conn = open_qemu()
    dom = conn.define_domain_xml(tuned_xml(
        "bad", domain_type, "<memtune><hard_limit unit='parsecs'>1</hard_limit></memtune>"))
    cgroup_cleanup.append(dom.uuid)
    with pytest.raises(OperationFailed, match="unknown unit 'parsecs'") as caught:
        dom.create()
    assert "\n" not in str(caught.value)
    assert not cgroups.guest_dirs(dom.uuid)["cpu"].exists()


def cpus_allowed(pid: int, tid: int) -> str:
    return proc_status_of(f"/proc/{pid}/task/{tid}/status")["Cpus_allowed_list"]


def proc_status_of(path: str) -> dict[str, str]:
    lines = Path(path).read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_vcpupin_and_emulatorpin_pin_qemus_threads(open_qemu: Opener, qemu_root: Path,
                                                   domain_type: str) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("pinning apart needs two CPUs; this host has one")
    conn = open_qemu()
    xml = tuned_xml("pin", domain_type, "<cputune><vcpupin vcpu='0' cpuset='1'/>"
                    "<emulatorpin cpuset='0'/></cputune>")
    dom = conn.define_domain_xml(xml.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"))
    dom.create()
    pid = qemu_pid(qemu_root, "pin")
    stats = conn.get_all_domain_stats()[0].stats
    assert stats["vcpu.current"] == 2
    vcpu_threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        if name.startswith("CPU "):  # QEMU names vCPU threads "CPU N/KVM" or "CPU N/TCG"
            vcpu_threads[int(name.split()[1].split("/")[0])] = int(tid)
    assert cpus_allowed(pid, vcpu_threads[0]) == "1"
    assert cpus_allowed(pid, vcpu_threads[1]) != "1"  # not pinned: the host's CPUs
    assert cpus_allowed(pid, pid) == "0"  # the main (emulator) thread
    # the pinning shows through the API (virDomainGetVcpus) and `hvmon vcpupin`
    vcpus = dom.vcpu_info()
    assert [v.number for v in vcpus] == [0, 1]
    assert vcpus[0].affinity == (1,) and vcpus[0].cpu in (1, -1)
    assert set(vcpus[1].affinity) == set(range(os.cpu_count() or 1))
    assert all(v.state == 1 and v.cpu_time >= 0 for v in vcpus)
    # re-pinned live (virsh vcpupin --live): the thread moves, the definition stays
    dom.pin_vcpu(1, "0", live=True)
    assert cpus_allowed(pid, vcpu_threads[1]) == "0"
    assert dom.vcpu_info()[1].affinity == (0,)
    assert "<vcpupin vcpu=\"1\" cpuset=\"0\"/>" in dom.xml_desc()
    assert "vcpu=\"1\"" not in dom.xml_desc(inactive=True)
    dom.pin_vcpu(1, "1", config=True)
    assert "<vcpupin vcpu=\"1\" cpuset=\"1\"/>" in dom.xml_desc(inactive=True)
    assert cpus_allowed(pid, vcpu_threads[1]) == "0"  # the running guest kept its pin
    assert "<vcpupin vcpu='0' cpuset='1'/>" in dom.xml_desc().replace('"', "'")
    dom.destroy()


def test_a_pin_to_a_cpu_this_host_lacks_refuses_the_start(open_qemu: Opener,
                                                          domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(tuned_xml(
        "badpin", domain_type, "<cputune><vcpupin vcpu='0' cpuset='4095'/></cputune>"))
    with pytest.raises(OperationFailed, match="CPU 4095 does not exist on this host"):
        dom.create()
    assert not dom.is_active()


def test_numatune_strict_becomes_the_guests_cpuset_mems(
        cgroup_cleanup: list[str], open_qemu: Opener, qemu_root: Path, domain_type: str) -> None:
    need_cgroups()
    if cgroups.CPUSET not in cgroups.mounts():
        pytest.skip(f"no cgroup v1 cpuset: {probe().line()}")
    configure(qemu_root, "cgroups = true\n")
    conn = open_qemu()
    dom = conn.define_domain_xml(tuned_xml(
        "numa", domain_type, "<numatune><memory mode='strict' nodeset='0'/></numatune>"))
    cgroup_cleanup.append(dom.uuid)
    dom.create()
    pid = qemu_pid(qemu_root, "numa")
    cpuset = cgroups.guest_dirs(dom.uuid)[cgroups.CPUSET]
    assert str(pid) in (cpuset / "cgroup.procs").read_text().split()
    assert (cpuset / "cpuset.mems").read_text().strip() == "0"
    assert proc_status(pid)["Mems_allowed_list"] == "0"
    dom.destroy()
    assert not cpuset.exists()
    bad = conn.define_domain_xml(tuned_xml(
        "numa2", domain_type, "<numatune><memory mode='strict' nodeset='63'/></numatune>"))
    with pytest.raises(OperationFailed, match=r"nodeset='63'>: this host has NUMA node"):
        bad.create()


# --- per-guest identities: user_range, <seclabel model='dac'> ---------------------------

#: a uid range with no accounts on this host (systemd's DynamicUser uses 61184-65519)
RANGE_FIRST = 61200


def live_label(dom: hvmon.Domain) -> tuple[str, str, str]:
    """(type, relabel, label) of the live DAC seclabel."""
    from hvmon.core.xml.domain import Domain as DomainXML

    labels = [s for s in DomainXML.from_xml(dom.xml_desc()).seclabels if s.model == "dac"]
    assert len(labels) == 1, dom.xml_desc()
    return labels[0].type, labels[0].relabel or "", labels[0].label or ""


def steal(conn: hvmon.Connection, name: str, disk: Path) -> str:
    """QMP blockdev-add on ``name``'s QEMU opening ``disk``: QEMU's error ('' if it opened)."""
    drv = conn.driver  # type: ignore[attr-defined]
    try:
        drv.lifecycle.execute(drv.registry.find("name", name), "blockdev-add", {
            "driver": "raw", "node-name": "stolen",
            "file": {"driver": "file", "filename": str(disk)}})
    except OperationFailed as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("spaces", ["", 'namespaces = ["mount", "pid"]\n'],
                         ids=["plain", "mount+pid-namespaces"])
def test_each_guest_runs_as_its_own_uid_and_cannot_open_another_guests_disk(
        open_qemu: Opener, qemu_root: Path, disk_image: Callable[[str], Path],
        domain_type: str, spaces: str) -> None:
    need_root()
    if spaces and not probe().pid_namespace:
        pytest.skip(f"no PID namespace here: {probe().line()}")
    configure(qemu_root, f"user_range = [{RANGE_FIRST}, 4]\n{spaces}")
    disks = {name: disk_image(name) for name in ("ga", "gb")}
    conn = open_qemu()
    doms = {name: conn.define_domain_xml(guest_xml(name, domain_type, disk))
            for name, disk in disks.items()}
    for dom in doms.values():
        dom.create()
    uids = {name: int(proc_status(qemu_pid(qemu_root, name))["Uid"].split()[0])
            for name in doms}
    print(f"\nguest uids: {uids}")
    assert uids["ga"] != uids["gb"]
    for name, uid in uids.items():
        assert RANGE_FIRST <= uid < RANGE_FIRST + 4
        status = proc_status(qemu_pid(qemu_root, name))
        assert status["Uid"].split() == [str(uid)] * 4 and status["Gid"].split() == [str(uid)] * 4
        info = os.stat(disks[name])
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (uid, uid, 0o600)
        assert live_label(doms[name]) == ("dynamic", "yes", f"+{uid}:+{uid}")
        assert "<seclabel" not in doms[name].xml_desc(inactive=True)  # live only
    # guest A's QEMU cannot open guest B's disk (and the other way round)
    error = steal(conn, "ga", disks["gb"])
    assert "Permission denied" in error, error
    assert "Permission denied" in steal(conn, "gb", disks["ga"])
    # the same uid again after a stop and a daemon restart; released on undefine
    doms["ga"].destroy()
    assert os.stat(disks["ga"]).st_uid == os.geteuid()
    conn.close()
    conn = open_qemu()
    again = conn.lookup_domain_by_name("ga")
    again.create()
    assert int(proc_status(qemu_pid(qemu_root, "ga"))["Uid"].split()[0]) == uids["ga"]
    again.destroy()
    store = qemu_root / "etc/qemu/dac-ids.json"
    assert again.uuid in store.read_text()
    again.undefine()
    assert again.uuid not in store.read_text()
    conn.lookup_domain_by_name("gb").destroy()


def test_a_static_dac_seclabel_runs_the_guest_as_that_uid(
        open_qemu: Opener, qemu_root: Path, disk_image: Callable[[str], Path],
        domain_type: str) -> None:
    need_root()
    configure(qemu_root, "")  # no qemu.conf settings: the label alone decides
    disk = disk_image("st")
    label = ("<seclabel type='static' model='dac' relabel='yes'>"
             f"<label>+{OTHER}:+{OTHER}</label></seclabel>")
    xml = guest_xml("st", domain_type, disk).replace("</domain>", f"  {label}\n</domain>")
    conn = open_qemu()
    dom = conn.define_domain_xml(xml)
    assert "<label>+65533:+65533</label>" in dom.xml_desc(inactive=True)
    dom.create()
    pid = qemu_pid(qemu_root, "st")
    assert proc_status(pid)["Uid"].split() == [str(OTHER)] * 4
    assert os.stat(disk).st_uid == OTHER
    assert live_label(dom) == ("static", "yes", f"+{OTHER}:+{OTHER}")
    # a guest running as nobody (another uid) cannot read it
    other = subprocess.run(["/usr/bin/head", "-c", "1", str(disk)], user=NOBODY, group=NOBODY,
                           extra_groups=[], capture_output=True, timeout=30, check=False)
    assert other.returncode != 0 and b"Permission denied" in other.stderr
    dom.destroy()
    assert os.stat(disk).st_uid == os.geteuid()


@pytest.mark.parametrize(("label", "wording"), [
    ("<seclabel type='dynamic' model='selinux'/>", "security model 'selinux' is not available"),
    ("<seclabel type='none' model='dac'/>", "type='none' model='dac'> is not supported"),
    ("<seclabel type='static' model='dac'><label>root</label></seclabel>",
     "must be +UID:+GID or user:group"),
    ("<seclabel type='static' model='dac'><label>+1:nosuchgrouphv</label></seclabel>",
     "group 'nosuchgrouphv' does not exist"),
])
def test_labels_the_driver_cannot_apply_refuse_the_start_in_one_line(
        open_qemu: Opener, domain_type: str, label: str, wording: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("lbl", domain_type).replace(
        "</domain>", f"{label}</domain>"))
    with pytest.raises(hvmon.HvmonError) as caught:
        dom.create()
    assert wording in str(caught.value) and "\n" not in str(caught.value)
    assert not dom.is_active()


def test_default_user_shows_its_dac_label(open_qemu: Opener, qemu_root: Path,
                                          domain_type: str) -> None:
    need_root()
    configure(qemu_root, 'user = "nobody"\ngroup = "nogroup"\n')
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("dl", domain_type))
    dom.create()
    assert live_label(dom) == ("dynamic", "yes", f"+{NOBODY}:+{NOBODY}")
    dom.destroy()
    assert not (qemu_root / "etc/qemu/dac-ids.json").exists()


@pytest.mark.parametrize(("text", "wording"), [
    ("user_range = [100, 10]\n", "must start at 1000 or above"),
    ("user_range = [70000]\n", "must be [first uid, count]"),
    ('user_range = [70000, 10]\nuser = "nobody"\n', "'user' and 'user_range' exclude"),
    ('namespaces = ["pid"]\n', "namespace 'pid' needs 'mount'"),
])
def test_bad_user_ranges_refuse_the_connection(open_qemu: Opener, qemu_root: Path, text: str,
                                               wording: str) -> None:
    configure(qemu_root, text)
    with pytest.raises(NoConnect, match=r"qemu\.conf") as caught:
        open_qemu()
    assert wording in str(caught.value)


def test_a_full_user_range_refuses_the_start(qemu_root: Path) -> None:
    from hvmon.core.drivers.qemu.isolation.config import IsolationConfig
    from hvmon.core.drivers.qemu.isolation.identity import Identities
    from hvmon.core.xml.domain import Domain as DomainXML

    (qemu_root / "etc/qemu").mkdir(parents=True)
    known = {"u1", "u2"}
    ids = Identities(qemu_root / "etc/qemu/dac-ids.json",
                     IsolationConfig(user_range=(70000, 1)), known.__contains__)
    live = DomainXML.from_xml(guest_xml("x", "qemu"))
    first = ids.resolve("u1", "one", live)
    assert first is not None and first.uid == 70000
    with pytest.raises(OperationFailed, match=r"no free uid in user_range \[70000, 1\]"):
        ids.resolve("u2", "two", DomainXML.from_xml(guest_xml("y", "qemu")))
    known.discard("u1")  # undefined behind the store's back: its uid is reclaimed
    second = ids.resolve("u2", "two", DomainXML.from_xml(guest_xml("y", "qemu")))
    assert second is not None and second.uid == 70000


def test_compat_seclabels_round_trip(compat_dir: Path) -> None:
    from lxml import etree

    from hvmon.core.xml import schema
    from hvmon.core.xml.domain import Domain as DomainXML

    for name in ("seclabel-dynamic", "seclabel-static"):
        text = (compat_dir / f"libvirt-xml/domain/{name}.x86_64-latest.xml").read_text()
        dom = DomainXML.from_xml(text)
        schema.validate(dom.element, "domain")
        assert [s.model for s in dom.seclabels] == ["selinux"]
        again = DomainXML.from_xml(dom.to_xml())
        assert etree.tostring(again.element, method="c14n") == \
            etree.tostring(etree.fromstring(text.encode()), method="c14n")


# --- QEMU as pid 1 of its own PID namespace ---------------------------------------------


def test_qemu_is_pid_1_of_its_own_pid_namespace(open_qemu: Opener, qemu_root: Path,
                                                domain_type: str) -> None:
    found = probe()
    print(f"\n{found.line()}")
    if not found.pid_namespace:
        pytest.skip(f"no PID namespace here: {found.line()}")
    configure(qemu_root, 'user = "nobody"\nnamespaces = ["mount", "pid"]\n')
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("pidns", domain_type))
    dom.create()
    pid = qemu_pid(qemu_root, "pidns")
    status = proc_status(pid)
    assert status["NSpid"].split() == [str(pid), "1"]
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert status["Uid"].split()[0] == str(NOBODY) and status["Seccomp"] == "2"
    assert "qemu-system" in Path(f"/proc/{pid}/cmdline").read_text()
    assert conn.driver.running_pids() == {"pidns": pid}  # type: ignore[attr-defined]
    assert conn.get_all_domain_stats()[0].stats["cpu.time"] > 0
    # a daemon restart reattaches to it by its host pid
    conn.close()
    conn = open_qemu()
    dom = conn.lookup_domain_by_name("pidns")
    assert dom.is_active() and conn.driver.running_pids() == {"pidns": pid}  # type: ignore
    dom.destroy()  # SIGTERM reaches QEMU as pid 1 (it handles it): no SIGKILL needed
    assert not process.alive(pid, dom.uuid)
    assert "terminating on signal 15" in (qemu_root / "log/qemu/pidns.log").read_text()
    # started by this driver: a crash (SIGKILL) is seen, the helper reaped
    dom.create()
    pid = qemu_pid(qemu_root, "pidns")
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while dom.is_active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dom.state()[0] == hvmon.DomainState.SHUTOFF and \
        dom.state()[1] == ShutoffReason.CRASHED
    # QMP quit ends it too
    dom.create()
    pid = qemu_pid(qemu_root, "pidns")
    drv = conn.driver  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        drv.lifecycle.execute(drv.registry.find("name", "pidns"), "quit")
    deadline = time.monotonic() + 10
    while process.alive(pid, dom.uuid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive(pid, dom.uuid)


# --- tap NICs of unprivileged guests ---------------------------------------------------

NET_CHILD = r"""
import json, subprocess, sys, hvmon
root, net_xml, dom_xml = sys.argv[1:4]
conn = hvmon.open(f"qemu:///embed?root={root}")
out = {}
try:
    conn.create_network_xml(net_xml)
    dom = conn.define_domain_xml(dom_xml)
    dom.create()
    pid = conn._driver.running_pids()[dom.name]
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    out["uid"] = status["Uid"].split()[0]
    out["nspid"] = status["NSpid"].split()
    link = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", "vnet0"],
                          capture_output=True, text=True, check=True).stdout
    out["tap"] = json.loads(link)[0]
    out["state"] = int(dom.state()[0])
    # another guest's user (another uid) tries to attach to this guest's tap: TUNSETIFF
    attach = ("import fcntl, os, struct\n"
              "fd = os.open('/dev/net/tun', os.O_RDWR)\n"
              "try:\n"
              "    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'vnet0', 0x1002))\n"
              "    print(0)\n"
              "except OSError as exc:\n"
              "    print(exc.errno)\n")
    out["other_attach"] = subprocess.run(["/usr/bin/python3", "-c", attach], user=65534,
                                         group=65534, extra_groups=[], capture_output=True,
                                         text=True).stdout.strip()
    out["fds"] = [__import__("os").readlink(f"/proc/{pid}/fd/{n}")
                  for n in __import__("os").listdir(f"/proc/{pid}/fd")]
    dom.destroy()
    out["after"] = subprocess.run(["ip", "link", "show", "dev", "vnet0"],
                                  capture_output=True).returncode
finally:
    conn._driver.networks().stop_all()
    conn.close()
print(json.dumps(out))
"""


def test_an_unprivileged_guest_gets_a_tap_it_owns_on_a_nat_network(
        make_ns: Callable[[], str], qemu_root: Path, domain_type: str) -> None:  # noqa: F811
    need_root()
    need_tool("/usr/bin/python3", "Debian package python3 (another uid attaches to the tap)")
    spaces = 'namespaces = ["mount", "pid"]\n' if probe().pid_namespace else ""
    print(f"\n{probe().line()}")
    configure(qemu_root, f"user_range = [{RANGE_FIRST}, 4]\n{spaces}")
    ns = make_ns()
    nic = "<interface type='network'><source network='n1'/><model type='virtio'/></interface>"
    out = json.loads(in_ns(ns, sys.executable, "-c", NET_CHILD, str(qemu_root), nat_xml(),
                           guest_xml("tapper", domain_type, extra=nic)))
    uid = int(out["uid"])
    assert RANGE_FIRST <= uid < RANGE_FIRST + 4
    info = out["tap"]["linkinfo"]["info_data"]
    assert (info["user"], info["group"]) == (uid, uid)
    assert out["tap"]["master"] == "hvbr0"
    assert out["state"] == int(hvmon.DomainState.RUNNING)
    assert "/dev/net/tun" in out["fds"]  # QEMU attached to its tap
    assert out["other_attach"] == str(errno.EPERM)  # not another uid (an ownerless tap: any)
    if spaces:
        assert out["nspid"][-1] == "1"
    assert out["after"] != 0  # the tap is gone with the guest


def test_a_disk_hot_plugged_into_an_isolated_guest_becomes_its_users(
        open_qemu: Opener, qemu_root: Path, disk_image: Callable[[str], Path],
        domain_type: str) -> None:
    need_root()
    configure(qemu_root, f"user_range = [{RANGE_FIRST}, 4]\n")
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("hot", domain_type, disk_image("hot")))
    dom.create()
    uid = int(proc_status(qemu_pid(qemu_root, "hot"))["Uid"].split()[0])
    extra = disk_image("hot-extra")
    before = os.stat(extra)

    def disk(path: Path, target: str) -> str:
        return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{path}'/><target dev='{target}' bus='virtio'/></disk>")

    dom.attach_device(disk(extra, "vdb"))
    assert os.stat(extra).st_uid == uid  # QEMU (uid) opened it: the plug succeeded
    drv = conn.driver  # type: ignore[attr-defined]
    blocks = drv.lifecycle.execute(drv.registry.find("name", "hot"), "query-block")
    assert any(b.get("inserted", {}).get("file") == str(extra) for b in blocks)
    # a plug that fails (the target is taken) leaves the file as it was
    spare = disk_image("hot-spare")
    with pytest.raises(hvmon.HvmonError, match="already has this <disk>"):
        dom.attach_device(disk(spare, "vdb"))
    assert os.stat(spare).st_uid == os.geteuid()
    dom.destroy()
    after = os.stat(extra)
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
