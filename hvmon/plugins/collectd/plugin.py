"""The in-tree ``collectd`` plugin: the ``collectd`` push agent and ``hvmon collectd-exec``.

Registered in the ``hvmon.plugins`` entry-point group like any other plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hvmon.hookspecs import hookimpl

if TYPE_CHECKING:
    from hvmon.cli.command import Command
    from hvmon.daemon.agent import AgentSpec


@hookimpl
def hvmon_add_agents() -> Sequence[AgentSpec]:
    """The ``collectd`` agent (docs/collectd.md)."""
    from hvmon.daemon.agent import AgentSpec
    from hvmon.plugins.collectd.agent import OPTIONS, CollectdAgent, validate_options

    return [AgentSpec("collectd", CollectdAgent,
                      "collectd network-protocol push: the virt plugin's value lists over UDP",
                      listen=None, options=OPTIONS, validate=validate_options)]


@hookimpl
def hvmon_add_cli_commands() -> Sequence[Command]:
    """``hvmon collectd-exec`` for collectd's Exec plugin."""
    from hvmon.plugins.collectd.exec import commands

    return commands()
