"""``hvmon plugins``: the discovered plugins, their versions and agents.

Whether an agent is enabled is read from the configuration the daemon would
use: ``--config PATH``, else ``/etc/hvmon/hvmon.toml`` when present, else the
built-in default (every in-tree agent enabled).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.cli.command import Command
from hvmon.cli.output import table

if TYPE_CHECKING:
    from hvmon.cli.context import CliContext
    from hvmon.daemon.config import Config
    from hvmon.daemon.plugins import AgentEntry, PluginHost

GROUP = "Daemon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="PATH", type=Path,
                        help="the daemon's TOML configuration (default: /etc/hvmon/hvmon.toml "
                             "when present)")
    source.add_argument("--no-config", action="store_true",
                        help="ignore /etc/hvmon/hvmon.toml (in-tree agents enabled)")


def describe(host: PluginHost, entries: dict[str, AgentEntry],
             config: Config | None) -> list[dict[str, Any]]:
    """One dict per plugin: name, version, package, module and its agents."""
    plugins = []
    for plugin in host.plugins:
        agents = []
        for name, entry in sorted(entries.items()):
            if entry.plugin.name != plugin.name:
                continue
            agent = config.agents.get(name) if config is not None else None
            listen = agent.listen if agent else entry.spec.listen or ()
            agents.append({"name": name, "description": entry.spec.description,
                           "enabled": None if config is None else bool(agent and agent.enabled),
                           "listen": list(listen)})
        plugins.append({"name": plugin.name, "version": plugin.version or None,
                        "package": plugin.package or None, "module": plugin.module,
                        "agents": agents})
    return plugins


def cmd_plugins(ctx: CliContext, args: argparse.Namespace) -> int:
    from hvmon.daemon.config import ConfigError
    from hvmon.daemon.main import config_loader
    from hvmon.daemon.plugins import PluginError, build_plugin_host

    try:
        host = build_plugin_host()
    except PluginError as exc:
        ctx.warn(str(exc))
        return 1
    entries = host.add_agents()
    schema = host.schema(entries)
    config: Config | None = None
    config_error = None
    try:
        config = config_loader(args.config, args.no_config, schema)()
    except ConfigError as exc:
        config_error = str(exc)
    plugins = describe(host, entries, config)
    source = str(config.path) if config is not None and config.path else None
    data = {"plugins": plugins, "config": source, "disabled": list(host.disabled),
            "problems": list(host.problems)}
    ctx.emit(data, lambda: _text(plugins, config, source, host.disabled, host.problems))
    if config_error:
        ctx.warn(config_error)
        return 1
    return 0


def _text(plugins: list[dict[str, Any]], config: Config | None, source: str | None,
          disabled: tuple[str, ...], problems: list[str]) -> str:
    rows = []
    for plugin in plugins:
        agents = ", ".join(f"{a['name']} ({_state(a['enabled'])})"
                           for a in plugin["agents"]) or "-"
        rows.append((plugin["name"], plugin["version"] or "-", plugin["package"] or "-", agents))
    text = table(("Plugin", "Version", "Package", "Agents"), rows)
    if config is None:
        text += "\nConfiguration: invalid (see the error below)\n"
    else:
        text += f"\nConfiguration: {source or 'none (built-in default: in-tree agents enabled)'}\n"
    if disabled:
        text += f"Disabled by HVMON_DISABLE_PLUGINS: {', '.join(disabled)}\n"
    if problems:
        text += "Problems:\n" + "".join(f"  {problem}\n" for problem in problems)
    return text


def _state(enabled: bool | None) -> str:
    return "?" if enabled is None else "enabled" if enabled else "disabled"


def commands() -> list[Command]:
    """The ``plugins`` command."""
    return [Command("plugins", "list the discovered plugins and whether their agents are enabled",
                    cmd_plugins, add_arguments, json=True, group=GROUP)]
