"""Hook specifications of hvmon plugins (markers, specs and docstrings only).

A plugin is a module (or object) registered in the ``hvmon.plugins`` entry-point
group whose functions carry :data:`hookimpl` and are named after a spec below.
Every hook is called with keyword arguments only; an implementation may accept
any subset of a spec's parameters. Hooks are for registration and configuration:
running work lives in agents that the daemon supervises. ``docs/plugins.md``
documents each hook with its exact signature (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hvmon.cli.command import Command
    from hvmon.core.drivers.base import Driver
    from hvmon.core.uri import ConnectURI
    from hvmon.daemon.agent import AgentSpec
    from hvmon.daemon.config import ConfigSection

#: the pluggy project name shared by the specs and the implementations
PROJECT = "hvmon"

hookspec = pluggy.HookspecMarker(PROJECT)
#: decorate a plugin's hook functions with this (``@hookimpl``)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def hvmon_add_agents() -> Sequence[AgentSpec]:
    """Register the agents this plugin provides.

    :return: one :class:`hvmon.daemon.agent.AgentSpec` per agent (name, factory,
        description, listen and option defaults, option validator). Names are
        unique across plugins; each agent is configured by ``[agents.<name>]``.
    """


@hookspec
def hvmon_add_cli_commands() -> Sequence[Command]:
    """Register ``hvmon`` subcommands.

    :return: :class:`hvmon.cli.command.Command` values, added after the built-in
        commands; a name that is already taken makes the whole group be skipped
        with a one-line warning.
    """


@hookspec(firstresult=True)
def hvmon_driver_for_uri(uri: ConnectURI) -> Driver | None:
    """Open the driver that serves ``uri`` inside the daemon ("who handles this?").

    :param uri: the parsed ``[daemon] uri`` (``driver``, ``path``, ``query`` ...).
    :return: an open :class:`hvmon.core.drivers.base.Driver`, or None when this
        plugin does not serve that URI. The first non-None answer wins; raise a
        :class:`hvmon.core.errors.HvmonError` when the URI is yours but cannot be
        opened.
    """


@hookspec
def hvmon_config_schema() -> Sequence[ConfigSection]:
    """Contribute configuration tables and defaults.

    :return: :class:`hvmon.daemon.config.ConfigSection` values. A section named
        ``agents.<name>`` sets option (and ``listen``) defaults for that agent and
        adds its validator; any other name declares a new top-level table that
        the config file may hold, with its defaults and validator.
    """
