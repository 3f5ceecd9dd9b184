"""Running QEMU for a domain: start, stop, pause, reboot, QMP events, reattach.

QEMU runs with ``-S -no-shutdown``: it waits for ``cont`` after the driver has
connected its monitor and set up what must not travel on the command line (a
VNC password), and it stays up when the guest powers off, so the driver
tells a guest power-off (``SHUTDOWN`` with ``guest: true``), a reboot it asked
for (reset and continue) and a crash (the monitor closes without any) apart.

QMP events arrive on the monitor loop thread and are handed to one worker
thread, which takes the registry lock: a driver call holding that lock while
it waits for a QMP answer can never block the loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hvmon.core.drivers.qemu import process
from hvmon.core.drivers.qemu.caps import QemuCaps
from hvmon.core.drivers.qemu.cmdline import build_command
from hvmon.core.drivers.qemu.monitor import Monitor, MonitorLoop
from hvmon.core.drivers.qemu.paths import QemuPaths
from hvmon.core.drivers.qemu.registry import Registry
from hvmon.core.drivers.qemu.state import QemuDomain
from hvmon.core.errors import HvmonError, OperationFailed, OperationInvalid, OperationTimeout
from hvmon.core.events import (
    LifecycleEvent,
    ResumedDetail,
    ShutdownDetail,
    StartedDetail,
    StoppedDetail,
    SuspendedDetail,
)
from hvmon.core.types import (
    DomainState,
    PausedReason,
    RunningReason,
    ShutdownReason,
    ShutoffReason,
)
from hvmon.core.xml.domain import Domain as DomainXML

log = logging.getLogger("hvmon.qemu")

#: QMP events migration's Perform waits on: handed over on the monitor's thread (no
#: worker, no registry lock), setting ``migration_event``
_MIGRATION_EVENTS = frozenset({"MIGRATION", "JOB_STATUS_CHANGE", "BLOCK_JOB_READY",
                               "BLOCK_JOB_ERROR"})

#: first TCP port for autoport VNC displays (display 0), as libvirt
VNC_PORT_MIN, VNC_PORT_MAX = 5900, 65535


class StartHook(Protocol):
    """A part of the driver that prepares host resources for a guest and releases them.

    ``prepare(dom, live)`` runs before QEMU starts and may rewrite ``live`` (resolve
    a pool volume to a path, create a tap device, take a disk lock); it raises a
    one-line HvmonError to refuse the start. ``release(dom, live)`` runs once the
    QEMU process is gone (stopped, crashed, or a failed start), and must not raise.
    Hooks run in registration order; release in reverse. Optional: the first hook
    with ``wrap_launch(dom, argv, launch)`` spawns QEMU (the isolation part), and
    ``started(dom, live, pid, execute)`` runs once the monitor is up, before ``cont``.
    """

    def prepare(self, dom: QemuDomain, live: DomainXML) -> None: ...

    def release(self, dom: QemuDomain, live: DomainXML) -> None: ...


@dataclass(frozen=True)
class Options:
    """Driver settings from the URI query (``?shutdown_timeout=5``)."""

    shutdown_timeout: float = 30.0
    reboot_timeout: float = 120.0
    start_timeout: float = 60.0
    monitor_timeout: float = 10.0
    #: the address incoming migrations listen on (this host's, as the source reaches it)
    migration_address: str = "127.0.0.1"
    #: CPU models guests may use here (empty: every model the binary knows)
    cpu_models: tuple[str, ...] = ()


@dataclass
class _Exiting:
    """A QEMU :meth:`Lifecycle.stop_detached` ended, until it is reaped."""

    dom: QemuDomain
    pid: int
    proc: Any
    live: DomainXML
    monitor: Monitor | None


class Lifecycle:
    """Starts and stops the registry's domains and follows their QEMU processes."""

    def __init__(self, registry: Registry, paths: QemuPaths, caps: Callable[[], QemuCaps],
                 options: Options) -> None:
        self.registry = registry
        self.paths = paths
        self._caps = caps
        self.options = options
        self.monitors = MonitorLoop()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "hvmon-qemu-events")
        #: see :class:`StartHook`; the driver's storage, network and lock parts add theirs
        self.hooks: list[StartHook] = []
        #: ``(dom, alias)`` when QEMU reports DEVICE_DELETED (the hot-unplug part)
        self.on_device_deleted: Callable[[QemuDomain, str], None] | None = None
        #: QEMUs told to exit by :meth:`stop_detached`, by domain UUID, until reaped and
        #: their host resources released
        self._exiting: dict[str, _Exiting] = {}

    def close(self) -> None:
        """Drop every monitor connection (guests keep running) and the threads."""
        with self.registry.locked():
            for dom in self.registry.domains.values():
                if dom.monitor is not None:
                    dom.monitor.close()
                    dom.monitor = None
            for uuid in list(self._exiting):
                self._reaped(uuid, wait=True)
        self._worker.shutdown(wait=True)
        self.monitors.stop()

    # --- start ----------------------------------------------------------------
    def start(self, dom: QemuDomain, live: DomainXML, *, paused: bool = False,
              incoming: bool = False) -> None:
        """Launch QEMU for ``live`` (a copy of the definition); the registry lock is held.

        ``incoming``: the guest will arrive by migration (``-incoming defer``): it
        stays paused, reason ``migration``, and no Started event is sent yet.
        """
        if dom.active:
            raise OperationInvalid(f"domain '{dom.name}' is already running")
        if dom.uuid in self._exiting:  # its previous QEMU is still exiting: finish that
            self._reaped(dom.uuid, wait=True)
        caps = self._caps()
        accel = self._accel(live, caps)
        prepared: list[StartHook] = []
        try:
            for hook in self.hooks:
                hook.prepare(dom, live)
                prepared.append(hook)
            vnc_port = self._vnc_port(live)
            monitor_path = self.paths.monitor(dom.name)
            with contextlib.suppress(FileNotFoundError):
                monitor_path.unlink()
            argv = build_command(live, caps, monitor=monitor_path, accel=accel,
                                 vnc_port=vnc_port)
            argv.append("-no-shutdown")
            if incoming:
                argv += ["-incoming", "defer"]
            self._launch(dom, live, argv, paused or incoming, incoming)
        except BaseException:
            self._release(prepared, dom, live)
            raise

    def _launch(self, dom: QemuDomain, live: DomainXML, argv: list[str], paused: bool,
                incoming: bool) -> None:
        monitor_path = self.paths.monitor(dom.name)
        logfile = self.paths.logfile(dom.name)
        proc = self._spawn(dom, argv, logfile)
        pid = proc.pid
        dom.run += 1
        monitor = self._monitor(dom, dom.run)
        try:
            monitor.connect(monitor_path, self.options.start_timeout,
                            lambda: process.exited(proc, logfile) if proc.poll() is not None
                            else None)
            self._set_vnc_password(monitor, live)
            for hook in self.hooks:  # the isolation part pins QEMU's threads
                started = getattr(hook, "started", None)
                if started is not None:
                    started(dom, live, pid, lambda cmd, args: monitor.execute(
                        cmd, args, timeout=self.options.monitor_timeout))
            if not paused:
                monitor.execute("cont", timeout=self.options.monitor_timeout)
        except BaseException:
            monitor.close()
            with contextlib.suppress(HvmonError):
                process.terminate(pid, dom.uuid)
            raise
        dom.id = self.registry.next_id()
        dom.live, dom.pid, dom.monitor, dom.started_at = live, pid, monitor, time.time()
        dom.proc = proc
        dom.stopping, dom.guest_powered_off = "", False
        if incoming:
            dom.state, dom.reason = DomainState.PAUSED, PausedReason.MIGRATION
            self.save_status(dom)
            return
        self.registry.queue_event(dom, LifecycleEvent.STARTED, StartedDetail.BOOTED)
        if paused:
            dom.state, dom.reason = DomainState.PAUSED, PausedReason.USER
            self.registry.queue_event(dom, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
        else:
            dom.state, dom.reason = DomainState.RUNNING, RunningReason.BOOTED
        self.save_status(dom)

    def _spawn(self, dom: QemuDomain, argv: list[str], logfile: Path) -> Any:
        """Run QEMU, through the first hook that has ``wrap_launch`` (the isolation part)."""
        def launch(args: list[str], **options: Any) -> Any:
            return process.launch(args, logfile=logfile, **options)

        for hook in self.hooks:
            wrap = getattr(hook, "wrap_launch", None)
            if wrap is not None:
                return wrap(dom, argv, launch)
        return launch(argv)

    @staticmethod
    def _accel(live: DomainXML, caps: QemuCaps) -> str:
        if live.type == "kvm":
            if not caps.kvm:
                raise OperationInvalid("domain type 'kvm' needs KVM, which this host cannot "
                                       "use (no usable /dev/kvm): use type='qemu' (TCG)")
            return "kvm"
        if live.type in ("qemu", "", None):
            return "tcg"
        raise OperationInvalid(f"domain type '{live.type}' is not served by the qemu driver "
                               "(use 'kvm' or 'qemu')")

    @staticmethod
    def _vnc_port(live: DomainXML) -> int | None:
        """The VNC port: the one the XML gives, or a free one from 5900 (autoport)."""
        graphics = live.element.find("devices/graphics[@type='vnc']")
        if graphics is None:
            return None
        port = graphics.get("port", "-1")
        if graphics.get("autoport", "yes" if port in ("-1", "") else "no") == "no":
            return int(port)
        for candidate in range(VNC_PORT_MIN, VNC_PORT_MAX):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", candidate))
                except OSError:
                    continue
            graphics.set("port", str(candidate))
            graphics.set("autoport", "yes")
            return candidate
        raise OperationFailed("no free VNC port from 5900")

    @staticmethod
    def _set_vnc_password(monitor: Monitor, live: DomainXML) -> None:
        graphics = live.element.find("devices/graphics[@type='vnc']")
        if graphics is None or graphics.get("passwd") is None:
            return
        monitor.execute("set_password", {"protocol": "vnc", "password": graphics.get("passwd")})
        valid_to = graphics.get("passwdValidTo")
        expiry = "never"
        if valid_to:
            expiry = str(int(time.mktime(time.strptime(valid_to, "%Y-%m-%dT%H:%M:%S"))))
        monitor.execute("expire_password", {"protocol": "vnc", "time": expiry})

    def _monitor(self, dom: QemuDomain, run: int) -> Monitor:
        def on_event(name: str, data: Mapping[str, Any]) -> None:
            if name in _MIGRATION_EVENTS and dom.run == run:  # Perform waits on them: at once
                if name == "MIGRATION":
                    dom.migration_status = str(data.get("status", ""))
                dom.migration_event.set()
                return
            self._worker.submit(self._guard, self.on_qmp_event, dom, run, name, data)

        def on_close() -> None:
            self._worker.submit(self._guard, self.on_monitor_closed, dom, run)

        return Monitor(self.monitors, dom.name, on_event, on_close)

    @staticmethod
    def _guard(handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("QEMU event handling failed")

    # --- stop -----------------------------------------------------------------
    def destroy(self, dom: QemuDomain) -> None:
        if not dom.active:
            raise OperationInvalid(f"domain '{dom.name}' is not running")
        dom.stopping = "destroy"
        process.terminate(dom.pid, dom.uuid)
        self.stopped(dom, ShutoffReason.DESTROYED, StoppedDetail.DESTROYED)

    def stop_detached(self, dom: QemuDomain, reason: ShutoffReason,
                      detail: StoppedDetail) -> None:
        """End a QEMU nothing uses any more (a migrated-away source, paused for good)
        without waiting for it to exit (lock held).

        SIGTERM, and the domain is shut off at once, with its event; a thread reaps
        the process (SIGKILL after the grace) and then releases its host resources.
        A new start of the domain, or :meth:`close`, does that first when it comes
        sooner, so a new QEMU never meets the old one's resources.
        """
        assert dom.live is not None
        pid = dom.pid
        dom.stopping = "destroy"
        if process.alive(pid, dom.uuid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._exiting[dom.uuid] = _Exiting(dom, pid, dom.proc, dom.live, dom.monitor)
        dom.proc, dom.monitor = None, None  # reaped and closed by the thread
        self.stopped(dom, reason, detail, release=False)
        threading.Thread(target=self._reap, args=(dom.uuid, pid), daemon=True,
                         name=f"hvmon-reap-{pid}").start()

    def _reap(self, uuid: str, pid: int) -> None:
        """Wait for the exit of a QEMU :meth:`stop_detached` ended; release its resources."""
        with contextlib.suppress(HvmonError):
            process.terminate(pid, uuid)
        with self.registry.locked():
            entry = self._exiting.get(uuid)
            if entry is not None and entry.pid == pid:  # not done by a start meanwhile
                self._reaped(uuid, wait=False)

    def _reaped(self, uuid: str, wait: bool) -> None:
        """Reap an exiting QEMU (``wait``: for its exit first) and release (lock held)."""
        gone = self._exiting.pop(uuid)
        if gone.monitor is not None:
            gone.monitor.close()
        if wait:
            with contextlib.suppress(HvmonError):
                process.terminate(gone.pid, uuid)
        if gone.proc is not None:
            with contextlib.suppress(Exception):
                gone.proc.wait(5)
        self._release(self.hooks, gone.dom, gone.live)

    def stopped(self, dom: QemuDomain, reason: ShutoffReason, detail: StoppedDetail,
                quiet: bool = False, release: bool = True) -> None:
        """The process is gone: shut off, tell, forget a transient domain (lock held).

        ``quiet``: no event (an incoming migration that never became a guest here).
        ``release``: False when :meth:`stop_detached` releases the host resources later.
        """
        if dom.monitor is not None:
            dom.monitor.close()
        if dom.proc is not None:  # our child: reap it (a reattached QEMU is not)
            with contextlib.suppress(Exception):
                dom.proc.wait(5)
            dom.proc = None
        with contextlib.suppress(FileNotFoundError):
            self.paths.status(dom.name).unlink()
        if not quiet:
            self.registry.queue_event(dom, LifecycleEvent.STOPPED, detail)
        if dom.live is not None and release:
            self._release(self.hooks, dom, dom.live)
        dom.live, dom.monitor, dom.pid, dom.id = None, None, 0, -1
        dom.state, dom.reason, dom.stopping = DomainState.SHUTOFF, reason, ""
        if dom.config is None:
            self.registry.domains.pop(dom.uuid, None)

    @staticmethod
    def _release(hooks: list[StartHook], dom: QemuDomain, live: DomainXML) -> None:
        for hook in reversed(hooks):
            try:
                hook.release(dom, live)
            except Exception:  # a release must not stop the others
                log.exception("releasing host resources of domain '%s' failed", dom.name)

    def shutdown(self, dom: QemuDomain) -> None:
        """ACPI power button; wait up to ``shutdown_timeout`` for the guest to power off."""
        self._require(dom, DomainState.RUNNING, "not running")
        run = dom.run
        with self.registry.locked():
            self.execute(dom, "system_powerdown")
            dom.stopping = "shutdown"
        end = time.monotonic() + self.options.shutdown_timeout
        while time.monotonic() < end:  # the registry lock is free: events get handled
            if dom.run != run or not dom.active:
                return
            time.sleep(0.02)
        with self.registry.locked():
            if dom.stopping == "shutdown":
                dom.stopping = ""
        raise OperationTimeout(f"domain '{dom.name}' did not power off within "
                               f"{self.options.shutdown_timeout:g} s of the ACPI power button "
                               "(does the guest handle ACPI?); it is still running")

    def reboot(self, dom: QemuDomain) -> None:
        """ACPI power button; the guest's power-off is turned into a reset (libvirt's way)."""
        self._require(dom, DomainState.RUNNING, "not running")
        self.execute(dom, "system_powerdown")
        dom.stopping = "reboot"
        dom.reboot_until = time.monotonic() + self.options.reboot_timeout

    def suspend(self, dom: QemuDomain) -> None:
        self._require(dom, DomainState.RUNNING, "not running")
        self.execute(dom, "stop")
        dom.state, dom.reason = DomainState.PAUSED, PausedReason.USER
        self.registry.queue_event(dom, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
        self.save_status(dom)

    def resume(self, dom: QemuDomain) -> None:
        self._require(dom, DomainState.PAUSED, "not paused")
        self.execute(dom, "cont")
        dom.state, dom.reason = DomainState.RUNNING, RunningReason.UNPAUSED
        self.registry.queue_event(dom, LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED)
        self.save_status(dom)

    def execute(self, dom: QemuDomain, command: str,
                arguments: Mapping[str, Any] | None = None) -> Any:
        if dom.monitor is None:
            raise OperationInvalid(f"domain '{dom.name}' is not running")
        return dom.monitor.execute(command, arguments, self.options.monitor_timeout)

    @staticmethod
    def _require(dom: QemuDomain, state: DomainState, wording: str) -> None:
        if dom.state != state or not dom.active:
            raise OperationInvalid(f"domain '{dom.name}' is {wording}")

    # --- what QEMU tells ------------------------------------------------------------
    def on_qmp_event(self, dom: QemuDomain, run: int, name: str,
                     data: Mapping[str, Any]) -> None:
        with self.registry.locked():
            if dom.run != run or not dom.active or dom.monitor is None:
                return  # an earlier run's event, or one late for a closing driver
            if name == "SHUTDOWN" and data.get("guest"):
                self._guest_powered_off(dom)
            elif name == "SHUTDOWN" and data.get("reason") == "host-signal" \
                    and not dom.stopping:  # someone else signalled QEMU: libvirt's Shutdown/Host
                dom.guest_powered_off = True
                dom.state, dom.reason = DomainState.SHUTDOWN, ShutdownReason.USER
                self.registry.queue_event(dom, LifecycleEvent.SHUTDOWN, ShutdownDetail.HOST)
            elif name in ("STOP", "RESUME"):
                self._reconcile_run_state(dom)
            elif name == "BALLOON_CHANGE" and "actual" in data:
                dom.balloon = (run, int(data["actual"]))
            elif name == "DEVICE_DELETED" and data.get("device") and self.on_device_deleted:
                self.on_device_deleted(dom, str(data["device"]))

    def _reconcile_run_state(self, dom: QemuDomain) -> None:
        """Follow a pause or resume QEMU did on its own (I/O error, a monitor user).

        The driver's own ``stop``/``cont`` already set the state, and their events
        can arrive after a later command: QEMU's answer to ``query-status`` decides.
        """
        status = self.execute(dom, "query-status")
        if status.get("running") and dom.state == DomainState.PAUSED:
            dom.state, dom.reason = DomainState.RUNNING, RunningReason.UNPAUSED
            self.registry.queue_event(dom, LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED)
        elif not status.get("running") and dom.state == DomainState.RUNNING:
            io_error = status.get("status") == "io-error"
            dom.state = DomainState.PAUSED
            if dom.migrating:  # the last round of a live migration (libvirt's wording)
                dom.reason, detail = PausedReason.MIGRATION, SuspendedDetail.MIGRATED
            elif io_error:
                dom.reason, detail = PausedReason.IOERROR, SuspendedDetail.IOERROR
            else:
                dom.reason, detail = PausedReason.UNKNOWN, SuspendedDetail.PAUSED
            self.registry.queue_event(dom, LifecycleEvent.SUSPENDED, detail)
        else:
            return
        self.save_status(dom)

    def _guest_powered_off(self, dom: QemuDomain) -> None:
        """QMP ``SHUTDOWN`` with ``guest: true``: reset for a pending reboot, else shut off.

        The event detail is libvirt's for a guest-initiated power-off
        (``qemuProcessHandleShutdown``): Shutdown/GUEST, then Stopped/SHUTDOWN.
        """
        if dom.stopping == "reboot" and time.monotonic() < dom.reboot_until:
            dom.stopping = ""
            self.execute(dom, "system_reset")
            self.execute(dom, "cont")
            dom.state, dom.reason = DomainState.RUNNING, RunningReason.BOOTED  # as libvirt
            self.save_status(dom)
            return
        dom.guest_powered_off = True
        dom.state, dom.reason = DomainState.SHUTDOWN, ShutdownReason.USER
        self.registry.queue_event(dom, LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST)
        dom.stopping = "shutdown"
        process.terminate(dom.pid, dom.uuid)
        self.stopped(dom, ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN)

    def on_monitor_closed(self, dom: QemuDomain, run: int) -> None:
        """QEMU's monitor went away: it exited. A crash unless the driver or guest ended it."""
        with self.registry.locked():
            if dom.run != run or not dom.active or dom.stopping == "destroy":
                return
            if dom.guest_powered_off:
                self.stopped(dom, ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN)
            else:
                log.warning("QEMU of domain '%s' (pid %d) exited unexpectedly: %s", dom.name,
                            dom.pid, process.last_error(self.paths.logfile(dom.name)))
                self.stopped(dom, ShutoffReason.CRASHED, StoppedDetail.FAILED)

    # --- status files and reattach ---------------------------------------------------
    def save_status(self, dom: QemuDomain) -> None:
        assert dom.live is not None
        process.write_status(self.paths.status(dom.name), process.Status(
            dom.uuid, dom.name, dom.id, dom.pid, str(self.paths.monitor(dom.name)),
            int(dom.state), int(dom.reason), dom.started_at, dom.live.to_xml(),
            transient=dom.config is None))

    def reattach(self, dom: QemuDomain, status: process.Status) -> bool:
        """Take over a QEMU a previous daemon started; False (status removed) when gone."""
        path = self.paths.status(dom.name)
        if not process.alive(status.pid, dom.uuid):
            log.warning("domain '%s': QEMU pid %d is gone; marking it shut off", dom.name,
                        status.pid)
            path.unlink(missing_ok=True)
            return False
        dom.run += 1
        monitor = self._monitor(dom, dom.run)
        try:
            monitor.connect(self.paths.monitor(dom.name) if not status.monitor
                            else type(self.paths.run)(status.monitor), 5.0)
            running = monitor.execute("query-status", timeout=self.options.monitor_timeout)
        except HvmonError as exc:
            monitor.close()
            log.error("domain '%s': cannot reattach to QEMU pid %d: %s", dom.name, status.pid,
                      exc)
            return False
        dom.live = DomainXML.from_xml(status.live_xml)
        dom.pid, dom.monitor, dom.id, dom.started_at = status.pid, monitor, status.id, \
            status.started_at
        self.registry.note_id(status.id)
        if running.get("running"):
            dom.state, dom.reason = DomainState.RUNNING, status.reason if \
                status.state == DomainState.RUNNING else RunningReason.UNPAUSED
        else:
            dom.state = DomainState.PAUSED
            dom.reason = status.reason if status.state == DomainState.PAUSED else \
                PausedReason.UNKNOWN
        self.save_status(dom)
        return True
