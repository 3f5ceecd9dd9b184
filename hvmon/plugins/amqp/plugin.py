"""The in-tree ``amqp`` plugin: the ``amqp`` agent and ``hvmon console``.

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
    """The ``amqp`` agent (docs/amqp.md)."""
    from hvmon.daemon.agent import AgentSpec
    from hvmon.plugins.amqp.agent import OPTIONS, AmqpAgent, validate_options

    return [AgentSpec("amqp", AmqpAgent,
                      "AMQP (RabbitMQ): heartbeats, data and events out, method requests in",
                      listen=None, options=OPTIONS, validate=validate_options,
                      runs_without_config=False)]  # it declares durable queues on a broker


@hookimpl
def hvmon_add_cli_commands() -> Sequence[Command]:
    """``hvmon console``: the datacenter view over the broker."""
    from hvmon.plugins.amqp.console.cli import commands

    return commands()
