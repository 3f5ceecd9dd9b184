"""The in-tree ``snmp`` plugin: registers the SNMP agent (docs/snmp.md).

Registered in the ``hvmon.plugins`` entry-point group like any other plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvmon.daemon.agent import AgentSpec
from hvmon.hookspecs import hookimpl


@hookimpl
def hvmon_add_agents() -> Sequence[AgentSpec]:
    """The ``snmp`` agent: HVMON-MIB over UDP (or AgentX), SET control, notifications."""
    from hvmon.plugins.snmp.agent import SnmpAgent
    from hvmon.plugins.snmp.config import DEFAULT_LISTEN, OPTIONS, validate_options

    return [AgentSpec("snmp", SnmpAgent,
                      "SNMP agent: HVMON-MIB and the LIBVIRT-MIB view from the host's snapshot",
                      listen=DEFAULT_LISTEN, options=OPTIONS, validate=validate_options)]
