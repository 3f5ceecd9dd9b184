"""A QEMU domain as the driver tracks it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from hvmon.core.drivers.base import DomainRef, Listing
from hvmon.core.drivers.qemu.monitor import Monitor
from hvmon.core.drivers.qemu.process import QemuProcess
from hvmon.core.types import DomainState, JobInfo, ShutoffReason
from hvmon.core.xml.domain import Domain as DomainXML


@dataclass(eq=False)
class QemuDomain:
    """Definition(s), run state and the QEMU process of one domain.

    ``config`` is the persistent definition (None: transient), ``live`` the
    definition the running QEMU was started from (None: not running).
    ``stopping`` says why the driver itself is ending the process
    (``destroy``, ``shutdown``, ``reboot``), so its exit is not a crash.
    """

    uuid: str
    name: str
    config: DomainXML | None
    live: DomainXML | None = None
    id: int = -1
    state: DomainState = DomainState.SHUTOFF
    reason: int = ShutoffReason.UNKNOWN
    pid: int = 0
    monitor: Monitor | None = None
    #: the QEMU process when this driver started it (None after a reattach)
    proc: QemuProcess | None = None
    started_at: float = 0.0
    autostart: bool = False
    stopping: str = ""
    guest_powered_off: bool = False
    #: counts starts and reattaches: a QMP event of an earlier run is ignored
    run: int = 0
    reboot_until: float = 0.0
    #: a migration of this domain is between Begin and Confirm (source) or Prepare
    #: and Finish (destination)
    migrating: bool = False
    #: the UNIX socket an incoming tunnelled migration is written to
    incoming_socket: str = ""
    resume_after_failure: bool = False
    job: JobInfo = field(default_factory=JobInfo)
    #: set on QEMU's MIGRATION events (``migrate-set-capabilities events``)
    migration_event: threading.Event = field(default_factory=threading.Event)
    #: the status of QEMU's last MIGRATION event ("" before the first)
    migration_status: str = ""
    #: ((run, vCPUs online), [(vCPU index, thread id)]): query-cpus-fast, asked again
    #: only after a restart or a vCPU hot-plug (as libvirt keeps its vCPU pids)
    vcpu_threads: tuple[tuple[int, int], list[tuple[int, int]]] | None = None
    #: (run, bytes): the balloon's size, asked once per run then kept by BALLOON_CHANGE
    #: events (libvirt's cur_balloon)
    balloon: tuple[int, int] | None = None

    @property
    def active(self) -> bool:
        return self.live is not None

    @property
    def persistent(self) -> bool:
        return self.config is not None

    def current(self) -> DomainXML:
        definition = self.live if self.live is not None else self.config
        assert definition is not None
        return definition

    def ref(self) -> DomainRef:
        return DomainRef(self.uuid, self.name, self.id)

    def listing(self) -> Listing:
        return Listing(self.ref(), self.active, self.persistent, self.autostart)
