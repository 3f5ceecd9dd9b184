"""The in-tree ``cim`` plugin: registers the WBEM server agent (docs/cim.md).

Registered in the ``hvmon.plugins`` entry-point group like any other plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvmon.daemon.agent import AgentSpec
from hvmon.hookspecs import hookimpl


@hookimpl
def hvmon_add_agents() -> Sequence[AgentSpec]:
    """The ``cim`` agent: CIM-XML over HTTP(S) for root/virt and root/interop."""
    from hvmon.plugins.cim.agent import CimAgent
    from hvmon.plugins.cim.config import DEFAULT_LISTEN, OPTIONS, validate_options

    return [AgentSpec("cim", CimAgent,
                      "WBEM server (CIM-XML): the DMTF virtualization profiles in root/virt",
                      listen=DEFAULT_LISTEN, options=OPTIONS, validate=validate_options)]
