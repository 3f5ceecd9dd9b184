"""Hook specifications and the plugin host factory."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from importlib import metadata

import pluggy
import pytest

from hvmon import hookspecs
from hvmon.core.drivers.test.driver import TestDriver
from hvmon.core.errors import NoConnect
from hvmon.daemon import plugins
from hvmon.daemon.agent import AgentHealth, AgentSpec
from hvmon.daemon.config import ConfigSection
from hvmon.daemon.plugins import PluginError, build_plugin_host
from hvmon.hookspecs import hookimpl


def spec_functions() -> dict[str, types.FunctionType]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if inspect.isfunction(fn) and fn.__module__ == hookspecs.__name__}


class Idle:
    async def start(self, ctx: object) -> None:
        pass

    async def stop(self) -> None:
        pass

    def health(self) -> AgentHealth:
        return AgentHealth()


# --- hookspecs.py ------------------------------------------------------------------------
def test_hookspecs_holds_only_prefixed_documented_specs() -> None:
    specs = spec_functions()
    assert {"hvmon_add_agents", "hvmon_add_cli_commands", "hvmon_driver_for_uri",
            "hvmon_config_schema"} <= set(specs)
    for name, fn in specs.items():
        assert name.startswith("hvmon_"), name
        assert getattr(fn, "hvmon_spec", None) is not None, f"{name} lacks @hookspec"
        doc = inspect.getdoc(fn) or ""
        assert ":return:" in doc, f"{name}: docstring must say what it returns"
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{name}: parameter {param} undocumented"
        # the body is the docstring only: markers, specs and docstrings
        body = inspect.getsource(fn).split('"""')[-1].strip()
        assert body == "", f"{name} has code besides its docstring: {body!r}"
    # nothing else that is callable lives there besides the two markers
    others = {name for name, value in vars(hookspecs).items()
              if callable(value) and not name.startswith("_") and name not in specs
              and getattr(value, "__module__", "") == hookspecs.__name__}
    assert others == set()
    assert isinstance(hookspecs.hookspec, pluggy.HookspecMarker)
    assert isinstance(hookspecs.hookimpl, pluggy.HookimplMarker)


def test_only_the_driver_hook_is_firstresult() -> None:
    firstresult = {name for name, fn in spec_functions().items()
                   if fn.hvmon_spec.get("firstresult")}  # type: ignore[attr-defined]
    assert firstresult == {"hvmon_driver_for_uri"}


def test_hooks_are_called_with_keyword_arguments_only() -> None:
    host = build_plugin_host(disabled=())
    uri = "test:///default"
    from hvmon.core.uri import parse_uri

    with pytest.raises(TypeError):
        host.pm.hook.hvmon_driver_for_uri(parse_uri(uri))  # positional: refused by pluggy
    driver = host.pm.hook.hvmon_driver_for_uri(uri=parse_uri(uri))
    try:
        assert isinstance(driver, TestDriver)
    finally:
        driver.close()
    # every parameter of every spec can be passed by keyword
    for fn in spec_functions().values():
        for param in inspect.signature(fn).parameters.values():
            assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


# --- the factory -----------------------------------------------------------------------
def test_importing_the_plugin_host_creates_no_state() -> None:
    code = (
        "import sys, pluggy\n"
        "import hvmon.hookspecs, hvmon.daemon.plugins as p, hvmon.daemon.app, hvmon.cli.main\n"
        "mods = [hvmon.hookspecs, p, hvmon.daemon.app]\n"
        "assert not [v for m in mods for v in vars(m).values()\n"
        "            if isinstance(v, pluggy.PluginManager)], 'a module-level manager'\n"
        "assert 'hvmon.daemon.builtin' not in sys.modules, 'plugins loaded at import'\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_factory_loads_the_in_tree_plugin_through_its_entry_point() -> None:
    host = build_plugin_host(disabled=())
    other = build_plugin_host(disabled=())
    assert host.pm is not other.pm  # a fresh manager per call
    builtin = host.info("builtin")
    assert builtin.package == "hvmon" and builtin.in_tree
    assert builtin.version == metadata.version("hvmon")
    assert builtin.module == "hvmon.daemon.builtin"
    names = [ep.name for ep in metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)]
    assert "builtin" in names
    driver = host.driver_for_uri("test:///default")
    driver.close()


def test_hvmon_disable_plugins_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.DISABLE_ENV, " other , builtin,")
    assert plugins.disabled_plugins() == {"builtin", "other"}
    host = build_plugin_host()
    assert "builtin" not in [p.name for p in host.plugins]
    assert host.disabled == ("builtin", "other")
    with pytest.raises(NoConnect, match="no plugin serves URI 'test:///default'"):
        host.driver_for_uri("test:///default")
    monkeypatch.delenv(plugins.DISABLE_ENV)
    assert "builtin" in [p.name for p in build_plugin_host().plugins]


def test_check_pending_catches_a_misspelt_hookimpl() -> None:
    class Typo:
        @hookimpl
        def hvmon_add_agent(self) -> list[AgentSpec]:  # missing "s"
            return []

    with pytest.raises(PluginError) as info:
        build_plugin_host(plugins=[(Typo(), "typo")], disabled=())
    message = str(info.value)
    assert "plugin 'typo'" in message and "hvmon_add_agent" in message
    assert "\n" not in message


def test_a_hookimpl_with_unknown_arguments_is_an_error() -> None:
    class Wrong:
        @hookimpl
        def hvmon_driver_for_uri(self, url: str) -> None:
            return None

    with pytest.raises(PluginError, match="plugin 'wrong'.*url"):
        build_plugin_host(plugins=[(Wrong(), "wrong")], disabled=())


def test_a_plugin_that_fails_to_import_is_reported_not_fatal() -> None:
    entry_points = [
        metadata.EntryPoint("ghost", "hvmon_no_such_module_xyz", plugins.ENTRY_POINT_GROUP),
        metadata.EntryPoint("builtin", "hvmon.daemon.builtin", plugins.ENTRY_POINT_GROUP),
    ]
    host = build_plugin_host(entry_points=entry_points, disabled=())
    assert [p.name for p in host.plugins] == ["builtin"]
    assert len(host.problems) == 1
    problem = host.problems[0]
    assert problem.startswith("plugin 'ghost' (hvmon_no_such_module_xyz) failed to load: "
                              "ModuleNotFoundError")
    assert "\n" not in problem
    assert host.unavailable == ("ghost",)
    host.driver_for_uri("test:///default").close()


def test_facade_methods_collect_each_plugin_and_survive_a_failing_hook() -> None:
    class Good:
        @hookimpl
        def hvmon_add_agents(self) -> list[AgentSpec]:
            return [AgentSpec("good", Idle, listen="127.0.0.1:0")]

        @hookimpl
        def hvmon_config_schema(self) -> list[ConfigSection]:
            return [ConfigSection("agents.good", {"listen": ["127.0.0.1:1"]})]

    class Bad:
        @hookimpl
        def hvmon_add_agents(self) -> list[AgentSpec]:
            raise RuntimeError("kaputt")

    class Clash:
        @hookimpl
        def hvmon_add_agents(self) -> list[AgentSpec]:
            return [AgentSpec("good", Idle)]

    # pluggy calls the plugin registered last first: Good answers before Clash
    host = build_plugin_host(plugins=[(Clash(), "clash"), (Bad(), "bad-plugin"),
                                      (Good(), "good-plugin")], disabled=(),
                             entry_points=())
    agents = host.add_agents()
    assert list(agents) == ["good"]
    assert agents["good"].plugin.name == "good-plugin"
    assert agents["good"].spec.listen == ("127.0.0.1:0",)
    assert "plugin 'bad-plugin': hvmon_add_agents failed: RuntimeError: kaputt" in host.problems
    assert any("agent 'good' is already registered by plugin 'good-plugin'" in p
               for p in host.problems)
    schema = host.schema(agents)
    assert schema.agent_defaults("good")[0] == ("127.0.0.1:1",)
    assert schema.in_tree == frozenset()  # registered objects are not in-tree
