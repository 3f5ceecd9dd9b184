"""The plugin host: a small typed facade over pluggy, one method per hook.

:func:`build_plugin_host` makes a fresh :class:`pluggy.PluginManager` (nothing
exists at import time), registers the specs of :mod:`hvmon.hookspecs`, loads the
``hvmon.plugins`` entry points — in-tree plugins are registered there exactly
like third-party ones — minus those named in ``HVMON_DISABLE_PLUGINS``, and
ends with ``check_pending()``. A plugin that fails to import, or whose hook
raises, is reported as one line in :attr:`PluginHost.problems`; a misspelt or
mis-declared hook implementation is an error (:class:`PluginError`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from hvmon import hookspecs
from hvmon.core.errors import HvmonError, InternalError, NoConnect
from hvmon.core.uri import parse_uri
from hvmon.daemon.agent import AgentSpec
from hvmon.daemon.config import ConfigSection, Schema

if TYPE_CHECKING:
    from hvmon.cli.command import Command
    from hvmon.core.drivers.base import Driver

ENTRY_POINT_GROUP = "hvmon.plugins"
DISABLE_ENV = "HVMON_DISABLE_PLUGINS"
#: the distribution whose plugins count as in-tree
IN_TREE_PACKAGE = "hvmon"


class PluginError(InternalError):
    """A plugin that cannot be used as written (unknown hook, wrong arguments)."""


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin: entry-point name, version and package it comes from."""

    name: str
    version: str = ""
    package: str = ""
    module: str = ""

    @property
    def in_tree(self) -> bool:
        return self.package == IN_TREE_PACKAGE


@dataclass(frozen=True)
class AgentEntry:
    """An agent spec and the plugin that registered it."""

    spec: AgentSpec
    plugin: PluginInfo


def disabled_plugins(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Entry-point names listed in ``HVMON_DISABLE_PLUGINS`` (comma-separated)."""
    raw = (os.environ if environ is None else environ).get(DISABLE_ENV, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class PluginHost:
    """Typed access to the hooks of one plugin manager."""

    def __init__(self, pm: pluggy.PluginManager, plugins: Sequence[PluginInfo],
                 problems: Sequence[str] = (), disabled: Iterable[str] = ()) -> None:
        self.pm = pm
        self.plugins: tuple[PluginInfo, ...] = tuple(plugins)
        #: one line per plugin that failed to load or whose hook failed
        self.problems: list[str] = list(problems)
        self.disabled = tuple(sorted(disabled))
        self._failed: set[str] = set()

    def info(self, name: str) -> PluginInfo:
        for plugin in self.plugins:
            if plugin.name == name:
                return plugin
        return PluginInfo(name)

    @property
    def unavailable(self) -> tuple[str, ...]:
        """Plugins that are listed but could not be loaded."""
        return tuple(sorted(self._failed))

    # --- hooks -----------------------------------------------------------------
    def add_agents(self) -> dict[str, AgentEntry]:
        """``hvmon_add_agents``: every agent by name (a clashing name is reported)."""
        agents: dict[str, AgentEntry] = {}
        for plugin, results in self._collect("hvmon_add_agents"):
            for spec in results:
                if not isinstance(spec, AgentSpec):
                    self._report(f"plugin '{plugin.name}': hvmon_add_agents returned "
                                 f"{type(spec).__name__}, not AgentSpec")
                elif spec.name in agents:
                    self._report(f"plugin '{plugin.name}': agent '{spec.name}' is already "
                                 f"registered by plugin '{agents[spec.name].plugin.name}'")
                else:
                    agents[spec.name] = AgentEntry(spec, plugin)
        return agents

    def add_cli_commands(self) -> list[tuple[PluginInfo, list[Command]]]:
        """``hvmon_add_cli_commands``: each plugin's commands."""
        return [(plugin, list(results))
                for plugin, results in self._collect("hvmon_add_cli_commands")]

    def config_schema(self) -> list[ConfigSection]:
        """``hvmon_config_schema``: every contributed table."""
        sections: list[ConfigSection] = []
        for plugin, results in self._collect("hvmon_config_schema"):
            for section in results:
                if isinstance(section, ConfigSection):
                    sections.append(section)
                else:
                    self._report(f"plugin '{plugin.name}': hvmon_config_schema returned "
                                 f"{type(section).__name__}, not ConfigSection")
        return sections

    def driver_for_uri(self, uri: str) -> Driver:
        """``hvmon_driver_for_uri``: the first plugin's driver; NoConnect if none serves it."""
        parsed = parse_uri(uri)
        try:
            driver = self.pm.hook.hvmon_driver_for_uri(uri=parsed)
        except HvmonError:
            raise
        except Exception as exc:
            raise NoConnect(f"opening '{uri}' failed: {type(exc).__name__}: {exc}") from None
        if driver is None:
            raise NoConnect(f"no plugin serves URI '{uri}' (plugins: "
                            f"{', '.join(p.name for p in self.plugins) or 'none'})")
        return driver  # type: ignore[no-any-return]

    def schema(self, agents: Mapping[str, AgentEntry] | None = None) -> Schema:
        """The configuration schema: agents, plugin tables, which agents are in-tree.

        ``agents`` is a result of :meth:`add_agents` to reuse (else it is called).
        """
        agents = self.add_agents() if agents is None else agents
        return Schema(
            agents={name: entry.spec for name, entry in agents.items()},
            sections=tuple(self.config_schema()),
            in_tree=frozenset(name for name, entry in agents.items()
                              if entry.plugin.in_tree and entry.spec.runs_without_config),
            unavailable=self.unavailable,
        )

    # --- plumbing ----------------------------------------------------------------
    def _collect(self, hook_name: str, **kwargs: Any) -> list[tuple[PluginInfo, list[Any]]]:
        """Call each implementation of a collecting hook on its own, keyword arguments only.

        Calling them one by one tells which plugin returned what, and a plugin
        whose hook raises is reported and skipped instead of failing them all.
        """
        caller = getattr(self.pm.hook, hook_name)
        found: list[tuple[PluginInfo, list[Any]]] = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's own call order
            if impl.hookwrapper or impl.wrapper:
                continue
            plugin = self.info(impl.plugin_name)
            call: Callable[..., Any] = impl.function
            try:
                result = call(**{name: kwargs[name] for name in impl.argnames})
                found.append((plugin, list(result or ())))
            except Exception as exc:  # one plugin's bug must not take the others down
                self._report(f"plugin '{plugin.name}': {hook_name} failed: "
                             f"{type(exc).__name__}: {exc}")
        return found

    def _report(self, line: str) -> None:
        line = " ".join(line.split())
        if line not in self.problems:
            self.problems.append(line)


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def _describe(ep: metadata.EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(ep.name, dist.version if dist else "", dist.name if dist else "",
                      ep.value)


def build_plugin_host(
    *,
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    plugins: Iterable[tuple[object, str]] = (),
    disabled: Iterable[str] | None = None,
) -> PluginHost:
    """A fresh plugin host.

    ``entry_points`` replaces discovery of the ``hvmon.plugins`` group;
    ``plugins`` adds ``(object, name)`` pairs (tests register agents this way);
    ``disabled`` replaces ``HVMON_DISABLE_PLUGINS``. Raises :class:`PluginError`
    when a plugin implements a hook that does not exist or with the wrong arguments.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    skip = frozenset(disabled) if disabled is not None else disabled_plugins()
    infos: list[PluginInfo] = []
    problems: list[str] = []
    failed: list[str] = []
    candidates = _entry_points(ENTRY_POINT_GROUP) if entry_points is None else list(entry_points)
    for ep in candidates:
        info = _describe(ep)
        if ep.name in skip:
            continue
        if pm.get_plugin(ep.name) is not None:
            problems.append(f"plugin '{ep.name}' of package '{info.package}' skipped: "
                            "that name is already registered")
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # reported, not fatal: the other plugins still load
            failed.append(ep.name)
            problems.append(" ".join(f"plugin '{ep.name}' ({ep.value}) failed to load: "
                                     f"{type(exc).__name__}: {exc}".split()))
            continue
        _register(pm, plugin, ep.name)
        infos.append(info)
    for plugin, name in plugins:
        if name in skip:
            continue
        _register(pm, plugin, name)
        infos.append(PluginInfo(name, module=getattr(plugin, "__name__", type(plugin).__name__)))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin '{name}': {exc} (hooks are named hvmon_*: "
                          "see docs/plugins.md)") from None
    host = PluginHost(pm, infos, problems, skip)
    host._failed.update(failed)
    return host


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin '{name}': {' '.join(str(exc).split())}") from None
    except ValueError as exc:  # the same object or name twice
        raise PluginError(f"plugin '{name}': {exc}") from None
