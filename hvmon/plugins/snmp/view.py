"""What the SNMP engines (standalone UDP and AgentX) need from the MIB side.

``mibview.HvmonView`` implements :class:`SnmpView` for HVMON-MIB and the
LIBVIRT-MIB compatibility view; engines and tests depend on this protocol only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hvmon.core.api import DomainEvent
    from hvmon.plugins.snmp.table import OidTable
    from hvmon.plugins.snmp.types import OID, VarBind


class SetPlan(Protocol):
    """A validated SET: nothing has changed until :meth:`commit`."""

    def commit(self) -> None:
        """Apply every change; raise SetFailure(COMMIT_FAILED or UNDO_FAILED, index) on failure."""
        ...


class SnmpView(Protocol):
    """The MIB content an engine serves, one snapshot generation at a time."""

    #: the subtrees this view answers for (registered with an AgentX master)
    roots: Sequence[OID]

    def table(self) -> OidTable:
        """The table of the current snapshot; cheap while the generation is unchanged.

        Never calls the driver: it reads the daemon's snapshot cache.
        """
        ...

    def plan_set(self, varbinds: Sequence[VarBind], *, writable: bool) -> SetPlan:
        """Check a SET without changing anything.

        ``writable`` is False when the requester may not write (read-only
        community or user, or the agent has no control): every varbind is then
        refused (NOT_WRITABLE for writable objects, NO_ACCESS/NOT_WRITABLE per
        RFC 3416 otherwise). Raises :class:`~hvmon.plugins.snmp.types.SetFailure`
        with the first bad varbind's index and status (wrongType,
        inconsistentValue, notWritable, noCreation ...).
        """
        ...

    def notifications(self, event: DomainEvent) -> list[tuple[OID, list[VarBind]]]:
        """(snmpTrapOID value, varbinds) of each notification for a lifecycle event.

        One HVMON-MIB notification, plus libvirtGuestNotif when the LIBVIRT-MIB
        view is on. The engine adds sysUpTime.0 and snmpTrapOID.0 itself.
        """
        ...
