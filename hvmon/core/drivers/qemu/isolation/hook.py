"""The driver's isolation start hook: DAC ownership, and how QEMU is launched.

``prepare`` decides who the guest runs as (:mod:`.identity`: qemu.conf's user, a
``<seclabel model='dac'>`` or a uid of its own from ``user_range``);
``prepare``/``release`` hand the guest's files to that user and back
(:mod:`.dac`). :meth:`IsolationHook.wrap_launch` starts QEMU already
unprivileged (Popen ``user``/``group``/``extra_groups``: ``-runas`` is killed by
the ``elevateprivileges=deny`` sandbox), optionally through ``unshare --mount``
for a private mount namespace (``--pid --fork`` too for a PID namespace, QEMU
being its pid 1), with the QMP socket created by the driver in its 0700 run
directory and passed to QEMU as an already listening descriptor.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from hvmon.core.drivers.qemu.cmdline import secrets_dir
from hvmon.core.drivers.qemu.isolation import cgroups, dac, pinning
from hvmon.core.drivers.qemu.isolation.config import IsolationConfig, load
from hvmon.core.drivers.qemu.isolation.identity import Identities, Identity
from hvmon.core.drivers.qemu.isolation.probe import probe
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.process import QemuProcess
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import OperationFailed
from hvmon.core.xml.domain import Domain as DomainXML

#: ``launch(argv, **popen_options)``: process.launch with the log file bound
Launch = Callable[..., subprocess.Popen[bytes]]
#: the helper that sets up QEMU's private /dev inside its mount namespace
NSEXEC = "hvmon.core.drivers.qemu.isolation.nsexec"
#: the chardev id of the QMP monitor when it is passed as a descriptor
QMP_ID = "hvmon-qmp"
#: how long ``unshare --fork`` may take to fork QEMU's process
FORK_TIMEOUT = 10.0


class IsolationHook:
    """Start hook (see lifecycle.StartHook) plus the launch wrapper for one driver root."""

    def __init__(self, paths: QemuPaths, config: IsolationConfig,
                 known: Callable[[str], bool] = lambda uuid: True) -> None:
        self.paths = paths
        self.config = config
        #: who each guest runs as; ``known(uuid)``: the driver still has that domain
        self.identities = Identities(paths.config / "dac-ids.json", config, known)
        #: per domain uuid: the devices its private /dev holds (set by prepare)
        self._devices: dict[str, list[str]] = {}
        #: per domain uuid: who its QEMU runs as (None: the daemon's user)
        self._ids: dict[str, Identity | None] = {}

    def _record(self, dom: QemuDomain) -> Any:
        return self.paths.run / f"{dom.name}.dac.json"

    def prepare(self, dom: QemuDomain, live: DomainXML) -> None:
        cfg = self.config
        if cfg.error:
            raise OperationFailed(cfg.error)
        if "mount" in cfg.namespaces and not probe().mount_namespace:
            raise OperationFailed("qemu.conf asks for a mount namespace, which this host "
                                  f"cannot give ({probe().line()})")
        if "pid" in cfg.namespaces and not probe().pid_namespace:
            raise OperationFailed("qemu.conf asks for a PID namespace, which this host "
                                  f"cannot give ({probe().line()})")
        ident = self.identities.resolve(dom.uuid, dom.name, live)
        if ident is not None and os.geteuid() != 0 and ident.uid != os.geteuid():
            raise OperationFailed(f"domain '{dom.name}': running QEMU as uid {ident.uid} "
                                  "needs the daemon to run as root")
        pinning.plan(live)  # refuse bad pins before anything is started
        self._devices[dom.uuid] = devices_for(live)
        self._ids[dom.uuid] = ident
        if cfg.cgroups:
            cgroups.create(dom.uuid, live)
        if ident is None or not ident.relabel:
            return
        extra = [secrets_dir(self.paths.monitor(dom.name))]
        try:
            dac.take(self._record(dom), dac.guest_files(live), extra, ident.uid, ident.gid)
        except BaseException:
            if cfg.cgroups:
                cgroups.remove(dom.uuid)
            raise

    def tap_owner(self, dom: QemuDomain, live: DomainXML) -> tuple[int, int] | None:
        """(uid, gid) owning a guest's taps: only its QEMU (and root) may attach to them."""
        ident = self.identities.resolve(dom.uuid, dom.name, live)
        return None if ident is None else (ident.uid, ident.gid)

    def hand_over(self, dom: QemuDomain, disk: etree._Element) -> list[Path]:
        """chown a disk about to be hot-plugged into running ``dom`` to its user; the
        files changed (for :meth:`take_back` if plugging fails)."""
        if dom.live is None:
            return []
        ident = self.identities.resolve(dom.uuid, dom.name, dom.live)
        if ident is None or not ident.relabel:
            return []
        holder = DomainXML.from_xml(b"<domain><devices/></domain>")
        holder.ensure("devices").append(copy.deepcopy(disk))
        files = dac.guest_files(holder)
        dac.take(self._record(dom), files, [], ident.uid, ident.gid, more=True)
        return [path for path, _ in files]

    def take_back(self, dom: QemuDomain, paths: list[Path]) -> None:
        """Undo :meth:`hand_over` (the hot-plug failed); never raises."""
        if paths:
            dac.give_back(self._record(dom), paths)

    def forget(self, uuid: str) -> None:
        """The domain is undefined: release the uid ``user_range`` gave it."""
        self.identities.forget(uuid)

    def started(self, dom: QemuDomain, live: DomainXML, pid: int, execute: pinning.Execute,
                ) -> None:
        """QEMU is up, its monitor connected, the guest not yet running: pin its threads."""
        pinning.apply(pid, live, execute)

    def release(self, dom: QemuDomain, live: DomainXML) -> None:
        self._devices.pop(dom.uuid, None)
        self._ids.pop(dom.uuid, None)
        dac.restore(self._record(dom))
        if self.config.cgroups:
            cgroups.remove(dom.uuid)
        if dom.config is None:  # transient: its uid goes with it
            self.identities.forget(dom.uuid)

    def wrap_launch(self, dom: QemuDomain, argv: list[str], launch: Launch) -> QemuProcess:
        """Start ``argv`` isolated as configured; the running process (QEMU's host pid)."""
        cfg = self.config
        ident = self._ids.get(dom.uuid)
        if ident is None and not cfg.namespaces:
            return self._grouped(dom, launch(argv))
        argv = list(argv)
        listener = self._monitor_listener(argv, str(self.paths.monitor(dom.name)))
        try:
            options: dict[str, Any] = {"pass_fds": (listener.fileno(),)}
            if ident is not None:
                options.update(group=ident.gid, extra_groups=list(cfg.extra_gids))
            if "mount" in cfg.namespaces:
                prefix = [probe().unshare or "unshare", "--mount", "--propagation", "private"]
                if "pid" in cfg.namespaces:
                    prefix += ["--pid", "--fork"]
                prefix += ["--", sys.executable, "-m", NSEXEC]
                for device in self._devices.get(dom.uuid, []):
                    prefix += ["--dev", device]
                if ident is not None:
                    prefix += ["--uid", str(ident.uid)]
                argv = [*prefix, "--", *argv]
            elif ident is not None:
                options["user"] = ident.uid
            launched = launch(argv, **options)
            proc: QemuProcess = launched
            if "pid" in cfg.namespaces:
                proc = NamespacedQemu(launched, _forked_child(launched))
            return self._grouped(dom, proc)
        finally:
            listener.close()

    def _grouped(self, dom: QemuDomain, proc: QemuProcess) -> QemuProcess:
        """Move the new QEMU into the guest's cgroup (when configured); kill it on failure."""
        if self.config.cgroups:
            try:
                cgroups.attach(dom.uuid, proc.pid)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        return proc

    @staticmethod
    def _monitor_listener(argv: list[str], path: str) -> socket.socket:
        """Bind the ``-qmp unix:PATH`` socket here; rewrite argv to pass it as ``fd=N``."""
        try:
            at = argv.index("-qmp")
        except ValueError:
            raise OperationFailed("internal error: no -qmp monitor on the QEMU command line") \
                from None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(1)
        except OSError as exc:
            listener.close()
            raise OperationFailed(f"cannot create the QMP socket {path}: {exc.strerror}") \
                from None
        argv[at:at + 2] = ["-chardev",
                           f"socket,id={QMP_ID},fd={listener.fileno()},server=on,wait=off",
                           "-mon", f"chardev={QMP_ID},mode=control"]
        return listener


class NamespacedQemu:
    """QEMU as pid 1 of its own PID namespace, seen from the daemon's.

    ``pid`` is QEMU's host pid (stats, signals, the status file); QEMU is the child
    of ``unshare --fork``, which waits for it and exits with its status, so ``poll``
    and ``wait`` ask that helper (the daemon's own child).
    """

    def __init__(self, helper: subprocess.Popen[bytes], pid: int) -> None:
        self.helper = helper
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return self.helper.returncode

    def poll(self) -> int | None:
        return self.helper.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.helper.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _forked_child(helper: subprocess.Popen[bytes]) -> int:
    """The host pid of the process ``unshare --fork`` forked (QEMU-to-be).

    The helper's own pid when it exits first: the caller then reports QEMU's log.
    """
    children = Path(f"/proc/{helper.pid}/task/{helper.pid}/children")
    end = time.monotonic() + FORK_TIMEOUT
    while time.monotonic() < end and helper.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            found = children.read_text().split()
            if found:
                return int(found[0])
        time.sleep(0.001)
    if helper.poll() is None:
        helper.kill()
        helper.wait()
        raise OperationFailed(f"unshare --fork did not start QEMU within {FORK_TIMEOUT:g} s")
    return helper.pid


def isolation_hook(paths: QemuPaths, *, system: bool,
                   known: Callable[[str], bool] = lambda uuid: True) -> IsolationHook:
    """The hook for a driver root, configured from its ``etc/qemu.conf``."""
    return IsolationHook(paths, load(paths.config, system=system), known)


def devices_for(live: DomainXML) -> list[str]:
    """The device nodes QEMU needs in its private /dev for ``live``."""
    out = ["/dev/kvm"] if live.type == "kvm" else []
    if live.element.find("devices/interface[@type='network']") is not None or \
            live.element.find("devices/interface[@type='bridge']") is not None:
        out += ["/dev/net/tun", "/dev/vhost-net"]
    for path, _ in dac.guest_files(live):
        try:
            if stat.S_ISBLK(os.stat(path).st_mode) and str(path).startswith("/dev/"):
                out.append(str(path))
        except OSError:
            continue
    return out
