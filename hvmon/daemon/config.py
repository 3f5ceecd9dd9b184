"""The daemon's TOML configuration: schema, validation, frozen config objects.

One file (``--config``, default ``/etc/hvmon/hvmon.toml``) holds a ``[daemon]``
table, one ``[agents.<name>]`` table per agent and any table a plugin declares
through ``hvmon_config_schema``. Validation collects every problem and raises
one :class:`ConfigError` naming all of them; unknown tables and keys are
problems too. docs/configuration.md documents every key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hvmon.core.errors import HvmonError, InvalidArgument
from hvmon.core.uri import parse_uri
from hvmon.daemon.addresses import parse_address
from hvmon.daemon.agent import AgentSpec, Validator

DEFAULT_CONFIG_PATH = Path("/etc/hvmon/hvmon.toml")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


class ConfigError(InvalidArgument):
    """A configuration with problems; ``problems`` lists each one."""

    def __init__(self, problems: Sequence[str], source: str = "configuration") -> None:
        self.problems = tuple(problems)
        super().__init__(f"invalid {source}: {'; '.join(self.problems)}")


@dataclass(frozen=True)
class ConfigSection:
    """A table a plugin contributes through ``hvmon_config_schema``.

    ``name`` is a top-level table (``tls``) or ``agents.<agent>``: for an agent
    the defaults override its :class:`~hvmon.daemon.agent.AgentSpec` option
    (and ``listen``) defaults and ``validate`` runs after the spec's own.
    """

    name: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    validate: Validator | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))


@dataclass(frozen=True)
class DaemonConfig:
    """The ``[daemon]`` table."""

    uri: str = "test:///default"
    run_dir: Path | None = None
    state_dir: Path | None = None
    allow_control: bool = False
    log_format: str = "text"
    log_level: str = "info"
    snapshot_interval: float = 15.0
    snapshot_max_age: float = 5.0
    snapshot_deadline: float = 5.0
    rw_socket_mode: int = 0o600
    ro_socket_mode: int = 0o666
    restart_delay: float = 1.0
    restart_delay_max: float = 60.0
    healthy_after: float = 60.0
    health_interval: float = 1.0
    default_network: bool = False


@dataclass(frozen=True)
class AgentConfig:
    """One ``[agents.<name>]`` table, merged with the agent's defaults."""

    enabled: bool = False
    control: bool = False
    listen: tuple[str, ...] = ()
    log_level: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "listen", tuple(self.listen))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class Config:
    """A validated configuration: the daemon, every known agent, plugin tables."""

    daemon: DaemonConfig
    agents: Mapping[str, AgentConfig]
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def enabled(self) -> tuple[str, ...]:
        """Names of the agents that run, in name order."""
        return tuple(sorted(name for name, agent in self.agents.items() if agent.enabled))


@dataclass(frozen=True)
class Schema:
    """What a config may hold: the registered agents and plugin tables.

    ``in_tree`` names the agents that run when there is no config file;
    ``unavailable`` names plugins that failed to load (quoted in messages).
    """

    agents: Mapping[str, AgentSpec] = field(default_factory=dict)
    sections: Sequence[ConfigSection] = ()
    in_tree: frozenset[str] = frozenset()
    unavailable: tuple[str, ...] = ()

    def agent_defaults(self, name: str) -> tuple[tuple[str, ...] | None, dict[str, Any],
                                                  list[Validator]]:
        """(listen defaults or None, option defaults, validators) of one agent."""
        spec = self.agents[name]
        listen, options = spec.listen, dict(spec.options)
        validators = [spec.validate] if spec.validate else []
        for section in self.sections:
            if section.name != f"agents.{name}":
                continue
            extra = dict(section.defaults)
            if "listen" in extra:
                listen = _listen(extra.pop("listen"))
            options.update(extra)
            if section.validate:
                validators.append(section.validate)
        return listen, options, validators

    def tables(self) -> dict[str, ConfigSection]:
        """Plugin-declared top-level tables by name."""
        return {s.name: s for s in self.sections if not s.name.startswith("agents.")}


#: every ``[daemon]`` key with its one-line meaning (docs/configuration.md mirrors it)
DAEMON_KEYS: Mapping[str, str] = MappingProxyType({
    "uri": "the one driver this daemon serves",
    "run_dir": "directory of the sockets (hvmon-sock, hvmon-sock-ro)",
    "state_dir": "directory of persistent state",
    "allow_control": "whether agents whose section says control = true get a read-write "
                     "connection",
    "log_format": "text or json (one JSON object per line)",
    "log_level": "debug, info, warning, error or critical",
    "snapshot_interval": "seconds between background snapshot refreshes (0: on demand only)",
    "snapshot_max_age": "seconds a cached snapshot may be served",
    "snapshot_deadline": "seconds one domain may take during a snapshot",
    "rw_socket_mode": "file mode of the read-write socket",
    "ro_socket_mode": "file mode of the read-only socket",
    "restart_delay": "first delay before restarting a failed agent (doubles each time)",
    "restart_delay_max": "longest delay between restarts",
    "healthy_after": "seconds an agent must run before its delay resets",
    "health_interval": "seconds between health polls of each agent",
    "default_network": "define and start the 'default' NAT network on first run (QEMU driver)",
})

#: the keys every ``[agents.<name>]`` table knows, besides the agent's own options
AGENT_KEYS: Mapping[str, str] = MappingProxyType({
    "enabled": "run this agent (with a config file only enabled agents run)",
    "control": "ask for a read-write connection (needs [daemon] allow_control)",
    "log_level": "level of the logger hvmon.agent.<name> (default: the daemon's)",
    "listen": "addresses to listen on, for agents that listen",
})


# --- value checks: each returns the converted value or raises ValueError ---------------
def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r:.40}")
    return value


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {value!r:.40}")
        return value.lower()
    return check


def _seconds(*, zero: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number of seconds, got {value!r:.40}")
        if value < 0 or (value == 0 and not zero):
            raise ValueError(f"must be {'>= 0' if zero else '> 0'}, got {value}")
        return float(value)
    return check


def _uri(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a connection URI string, got {value!r:.40}")
    try:
        parse_uri(value)
    except HvmonError as exc:
        raise ValueError(str(exc)) from None
    return value


def _directory(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a directory path, got {value!r:.40}")
    if not Path(value).is_absolute():
        raise ValueError(f"must be an absolute path, got {value!r}")
    return Path(value)


def _mode(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 8)
        except ValueError:
            raise ValueError(f"must be an octal file mode like \"0600\", got {value!r:.20}") \
                from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ValueError(f"must be a file mode from 0o000 to 0o777, got {value!r:.20}")
    return value


def _listen(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be an address or a list of addresses, got {value!r:.40}")
    if not items:
        raise ValueError("must name at least one address")
    for item in items:
        parse_address(item)
    return tuple(items)


_DAEMON_CHECKS: Mapping[str, Callable[[Any], Any]] = {
    "uri": _uri,
    "run_dir": _directory,
    "state_dir": _directory,
    "allow_control": _bool,
    "log_format": _choice(LOG_FORMATS),
    "log_level": _choice(LOG_LEVELS),
    "snapshot_interval": _seconds(zero=True),
    "snapshot_max_age": _seconds(zero=True),
    "snapshot_deadline": _seconds(zero=False),
    "rw_socket_mode": _mode,
    "ro_socket_mode": _mode,
    "restart_delay": _seconds(zero=False),
    "restart_delay_max": _seconds(zero=False),
    "healthy_after": _seconds(zero=False),
    "health_interval": _seconds(zero=False),
    "default_network": _bool,
}


def _like(default: Any, value: Any) -> Any:
    """``value`` if it has ``default``'s type (ints pass for floats), else ValueError."""
    if default is None:
        return value
    if isinstance(default, bool):
        return _bool(value)
    if isinstance(default, int | float):
        wanted = float if isinstance(default, float) else int
        if isinstance(value, bool) or not isinstance(value, int | wanted):
            label = "a number" if wanted is float else "an integer"
            raise ValueError(f"must be {label}, got {value!r:.40}")
        return wanted(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r:.40}")
        return value
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a list, got {value!r:.40}")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table, got {value!r:.40}")
        return MappingProxyType(dict(value))
    return value


def _run_validators(prefix: str, validators: Iterable[Validator], options: Mapping[str, Any],
                    problems: list[str]) -> None:
    view = MappingProxyType(dict(options))
    for validate in validators:
        try:
            found = list(validate(view))
        except Exception as exc:  # a plugin's validator bug is reported, not raised
            found = [f"validator failed: {type(exc).__name__}: {exc}"]
        problems.extend(f"{prefix}: {problem}" for problem in found)


# --- parsing ------------------------------------------------------------------
def _parse_daemon(table: Any, problems: list[str]) -> DaemonConfig:
    if not isinstance(table, Mapping):
        problems.append("daemon: must be a table")
        return DaemonConfig()
    values: dict[str, Any] = {}
    for key, value in table.items():
        check = _DAEMON_CHECKS.get(key)
        if check is None:
            problems.append(f"daemon.{key}: unknown key (known: {', '.join(DAEMON_KEYS)})")
            continue
        try:
            values[key] = check(value)
        except ValueError as exc:
            problems.append(f"daemon.{key}: {exc}")
    config = DaemonConfig(**values)
    if config.restart_delay_max < config.restart_delay:
        problems.append("daemon.restart_delay_max: must be >= restart_delay "
                        f"({config.restart_delay:g})")
    return config


def _agent_config(name: str, table: Mapping[str, Any] | None, schema: Schema,
                  problems: list[str], *, enabled: bool = False) -> AgentConfig:
    listen_default, options, validators = schema.agent_defaults(name)
    prefix = f"agents.{name}"
    values: dict[str, Any] = {"enabled": enabled, "listen": listen_default or ()}
    for key, value in (table or {}).items():
        try:
            if key in ("enabled", "control"):
                values[key] = _bool(value)
            elif key == "log_level":
                values[key] = _choice(LOG_LEVELS)(value)
            elif key == "listen":
                if listen_default is None:
                    problems.append(f"{prefix}.listen: agent '{name}' does not listen")
                    continue
                values[key] = _listen(value)
            elif key in options:
                options[key] = _like(options[key], value)
            else:
                known = [k for k in AGENT_KEYS if k != "listen" or listen_default is not None]
                known += options
                problems.append(f"{prefix}.{key}: unknown key (known: {', '.join(known)})")
        except ValueError as exc:
            problems.append(f"{prefix}.{key}: {exc}")
    if table is not None:
        _run_validators(prefix, validators, options, problems)
    return AgentConfig(options=options, **values)


def _parse_table(section: ConfigSection, table: Any, problems: list[str]) -> Mapping[str, Any]:
    values = dict(section.defaults)
    if not isinstance(table, Mapping):
        problems.append(f"{section.name}: must be a table")
        return MappingProxyType(values)
    for key, value in table.items():
        if key not in values:
            known = ", ".join(section.defaults) or "none"
            problems.append(f"{section.name}.{key}: unknown key (known: {known})")
            continue
        try:
            values[key] = _like(values[key], value)
        except ValueError as exc:
            problems.append(f"{section.name}.{key}: {exc}")
    validators = [section.validate] if section.validate else []
    _run_validators(section.name, validators, values, problems)
    return MappingProxyType(values)


def parse_config(data: Mapping[str, Any], schema: Schema, *, path: Path | None = None) -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` with every problem."""
    problems: list[str] = []
    plugin_tables = schema.tables()
    daemon = _parse_daemon(data.get("daemon", {}), problems)
    agents_table = data.get("agents", {})
    if not isinstance(agents_table, Mapping):
        problems.append("agents: must hold one [agents.<name>] table per agent")
        agents_table = {}
    for name in agents_table:
        if name not in schema.agents:
            known = ", ".join(sorted(schema.agents)) or "none"
            note = (f"; plugins that failed to load: {', '.join(schema.unavailable)}"
                    if schema.unavailable else "")
            problems.append(f"agents.{name}: unknown agent (known: {known}{note})")
        elif not isinstance(agents_table[name], Mapping):
            problems.append(f"agents.{name}: must be a table")
    agents = {
        name: _agent_config(
            name, table if isinstance(table := agents_table.get(name), Mapping) else None,
            schema, problems)
        for name in sorted(schema.agents)
    }
    tables: dict[str, Mapping[str, Any]] = {}
    for key, value in data.items():
        if key in ("daemon", "agents"):
            continue
        if key in plugin_tables:
            tables[key] = _parse_table(plugin_tables[key], value, problems)
        else:
            known = ", ".join(["daemon", "agents", *plugin_tables])
            problems.append(f"{key}: unknown {'table' if isinstance(value, Mapping) else 'key'}"
                            f" (known tables: {known})")
    for name, section in plugin_tables.items():
        tables.setdefault(name, MappingProxyType(dict(section.defaults)))
    if problems:
        raise ConfigError(problems, f"configuration {path}" if path else "configuration")
    return Config(daemon, MappingProxyType(agents), MappingProxyType(tables), path)


def load_config(path: Path, schema: Schema) -> Config:
    """Read and validate one TOML file."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError([f"cannot read it: {exc.strerror or exc}"],
                          f"configuration {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], f"configuration {path}") from None
    return parse_config(data, schema, path=path)


def default_config(schema: Schema) -> Config:
    """The configuration without a file: ``test:///default``, in-tree agents enabled."""
    problems: list[str] = []
    agents = {name: _agent_config(name, None, schema, problems, enabled=name in schema.in_tree)
              for name in sorted(schema.agents)}
    tables = {name: MappingProxyType(dict(section.defaults))
              for name, section in schema.tables().items()}
    return Config(DaemonConfig(), MappingProxyType(agents), MappingProxyType(tables), None)

