"""Command line of ``check_hvmon``: parsing and validation into :class:`Options`.

Bad arguments never exit from inside argparse: they raise :class:`UsageExit`,
which :mod:`hvmon.plugins.nagios.main` prints as an UNKNOWN status line and a
usage line (exit 3). ``--help`` and ``--version`` also exit 3, as every
Monitoring Plugin does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nagiosplugin import Range

MODES = ("host", "domain", "domains", "pool", "network", "daemon", "migration")
STATES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
          "pmsuspended", "missing")
LEVEL_NAMES = ("ok", "warning", "critical", "unknown")

#: default verdict per domain state (``missing``: no such domain)
DEFAULT_STATES: Mapping[str, str] = {
    "running": "ok", "blocked": "ok", "paused": "warning", "pmsuspended": "warning",
    "shutdown": "warning", "shutoff": "critical", "crashed": "critical",
    "nostate": "unknown", "missing": "critical",
}
#: (warning, critical) per mode for -w/-c when not given
DEFAULT_RANGES: Mapping[str, tuple[str, str]] = {
    "host": ("", ""), "domain": ("", ""), "domains": ("", "0"), "pool": ("80", "90"),
    "network": ("80", "90"), "daemon": ("60", "300"), "migration": ("600", "1800"),
}
HOST_MEMORY = ("1", "1.5")
HOST_VCPU = ("4", "8")
DEFAULT_URI = "qemu:///system"
DEFAULT_TIMEOUT = 10.0
USAGE = ("check_hvmon [-U URI] [-w RANGE] [-c RANGE] [-t SECONDS] [-v] MODE [NAME] "
         "[mode options] (MODE: host, domain NAME, domains, pool NAME or --all, "
         "network NAME or --all, daemon, migration; --help for more)")


class UsageExit(Exception):
    """Stop before checking: ``code`` and what to print (``text``)."""

    def __init__(self, code: int, text: str, mode: str | None = None) -> None:
        super().__init__(text)
        self.code, self.text, self.mode = code, text, mode


@dataclass(frozen=True)
class Options:
    """One validated command line."""

    mode: str
    name: str | None = None
    all: bool = False
    uri: str = DEFAULT_URI
    warning: Range = field(default_factory=Range)
    critical: Range = field(default_factory=Range)
    memory_warning: Range = field(default_factory=Range)
    memory_critical: Range = field(default_factory=Range)
    vcpu_warning: Range = field(default_factory=Range)
    vcpu_critical: Range = field(default_factory=Range)
    states: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATES))
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    cookie_dir: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_age: float | None = None
    verbose: int = 0


def default_uri(environ: Mapping[str, str] | None = None) -> str:
    """``$HVMON_DEFAULT_URI``, else ``qemu:///system`` (the local daemon's read-only socket)."""
    env = os.environ if environ is None else environ
    return env.get("HVMON_DEFAULT_URI") or DEFAULT_URI


def default_cookie_dir() -> Path:
    """``nagios/`` under hvmon's state directory for this user (see hvmon.core.paths)."""
    from hvmon.core.paths import default_state_dir

    return default_state_dir() / "nagios"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageExit(3, message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise UsageExit(3, message or "")


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from nagiosplugin import __version__ as np_version

        from hvmon import __version__

        raise UsageExit(3, f"check_hvmon v{__version__} (hvmon {__version__}, "
                           f"nagiosplugin {np_version})\n")


class _Help(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print this help and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        raise UsageExit(3, parser.format_help())


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="check_hvmon", usage=USAGE, add_help=False,
        description="Nagios/Icinga check of an hvmon host, always over a read-only "
                    "connection. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        epilog="Ranges: [@][start:][end] (10 = outside 0..10, 10: = below 10, ~:10 = above "
               "10, @10:20 = inside 10..20). See docs/nagios.md.",
    )
    p.add_argument("mode", metavar="MODE", choices=MODES,
                   help="one of: " + ", ".join(MODES))
    p.add_argument("name", metavar="NAME", nargs="?",
                   help="domain, pool or network name (or UUID)")
    common = p.add_argument_group("common options")
    common.add_argument("-h", "--help", action=_Help)
    common.add_argument("-V", "--version", action=_Version)
    common.add_argument("-U", "--uri", help="read-only connection URI (default: "
                        "$HVMON_DEFAULT_URI or qemu:///system, i.e. the local daemon's "
                        "read-only socket)")
    common.add_argument("-w", "--warning", metavar="RANGE",
                        help="warning range of the mode's main value")
    common.add_argument("-c", "--critical", metavar="RANGE",
                        help="critical range of the mode's main value")
    common.add_argument("-t", "--timeout", metavar="SECONDS", default=str(DEFAULT_TIMEOUT),
                        help="UNKNOWN after this many seconds (default 10)")
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more lines (-v results, -vv connection, -vvv timings)")
    common.add_argument("--max-age", metavar="SECONDS",
                        help="how old the daemon's snapshot may be (default: the daemon's)")
    modes = p.add_argument_group("mode options")
    modes.add_argument("--all", action="store_true", help="pool, network: every one")
    modes.add_argument("--state", metavar="STATE=LEVEL", action="append", default=[],
                       help="domain: verdict of a state (" + ", ".join(STATES) + ") as "
                       "ok, warning, critical or unknown; repeatable, comma-separated")
    modes.add_argument("--memory-warning", metavar="RANGE",
                       help="host: memory overcommit ratio (default 1); domain: guest "
                       "memory usage %%")
    modes.add_argument("--memory-critical", metavar="RANGE",
                       help="host: memory overcommit ratio (default 1.5); domain: guest "
                       "memory usage %%")
    modes.add_argument("--vcpu-warning", metavar="RANGE",
                       help="host: vCPU overcommit ratio (default 4)")
    modes.add_argument("--vcpu-critical", metavar="RANGE",
                       help="host: vCPU overcommit ratio (default 8)")
    modes.add_argument("--include", metavar="GLOB", action="append", default=[],
                       help="domains: only domains matching a pattern (repeatable)")
    modes.add_argument("--exclude", metavar="GLOB", action="append", default=[],
                       help="domains: skip domains matching a pattern (repeatable)")
    modes.add_argument("--cookie-dir", metavar="DIR",
                       help="domain: where CPU samples are kept between runs (default: "
                       "$HVMON_NAGIOS_STATE_DIR or nagios/ in hvmon's state directory)")
    return p


def _range(value: str | None, option: str, default: str = "") -> Range:
    spec = default if value is None else value
    try:
        return Range(spec)
    except (ValueError, TypeError):
        raise UsageExit(3, f"argument {option}: invalid range '{spec}' "
                           "(expected [@][start:][end])") from None


def _seconds(value: str | None, option: str, zero: bool = False) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (seconds >= 0 if zero else seconds > 0) or seconds == float("inf"):
        kind = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise UsageExit(3, f"argument {option}: expected {kind}, got '{value}'")
    return seconds


def _states(entries: Sequence[str]) -> dict[str, str]:
    states = dict(DEFAULT_STATES)
    for entry in (e for item in entries for e in item.split(",") if e.strip()):
        state, sep, level = (part.strip().lower() for part in entry.partition("="))
        if not sep or state not in STATES or level not in LEVEL_NAMES:
            raise UsageExit(3, f"argument --state: expected STATE=LEVEL with STATE one of "
                               f"{', '.join(STATES)} and LEVEL one of {', '.join(LEVEL_NAMES)}, "
                               f"got '{entry}'")
        states[state] = level
    return states


_ONLY = {
    "all": ("pool", "network"), "state": ("domain",), "memory_warning": ("host", "domain"),
    "memory_critical": ("host", "domain"), "vcpu_warning": ("host",),
    "vcpu_critical": ("host",), "include": ("domains",), "exclude": ("domains",),
    "cookie_dir": ("domain",),
}


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Options:
    """Validated options, or :class:`UsageExit`."""
    env = os.environ if environ is None else environ
    ns = build_parser().parse_intermixed_args(list(argv))
    mode: str = ns.mode
    try:
        return _validate(ns, mode, env)
    except UsageExit as exc:
        exc.mode = mode
        raise


def _validate(ns: argparse.Namespace, mode: str, env: Mapping[str, str]) -> Options:
    for dest, modes in _ONLY.items():
        if getattr(ns, dest) not in (None, False, []) and mode not in modes:
            flag = "--" + dest.replace("_", "-")
            which = ("modes " if len(modes) > 1 else "mode ") + ", ".join(modes)
            raise UsageExit(3, f"argument {flag}: applies only to {which}")
    if mode == "domain" and not ns.name:
        raise UsageExit(3, "mode domain needs a NAME")
    if mode in ("pool", "network") and bool(ns.name) == ns.all:
        raise UsageExit(3, f"mode {mode} needs a NAME or --all (not both)")
    if mode in ("host", "domains", "daemon", "migration") and ns.name is not None:
        raise UsageExit(3, f"mode {mode} takes no NAME (got '{ns.name}')")
    warn_default, crit_default = DEFAULT_RANGES[mode]
    warning = _range(ns.warning, "-w/--warning", warn_default)
    critical = _range(ns.critical, "-c/--critical", crit_default)
    mem = vcpu = ("", "")
    if mode == "host":
        mem = (ns.warning or HOST_MEMORY[0], ns.critical or HOST_MEMORY[1])
        vcpu = (ns.warning or HOST_VCPU[0], ns.critical or HOST_VCPU[1])
    cookie_dir = ns.cookie_dir or env.get("HVMON_NAGIOS_STATE_DIR")
    timeout = _seconds(ns.timeout, "-t/--timeout")
    assert timeout is not None
    return Options(
        mode=mode, name=ns.name, all=ns.all, uri=ns.uri or default_uri(env),
        warning=warning, critical=critical,
        memory_warning=_range(ns.memory_warning, "--memory-warning", mem[0]),
        memory_critical=_range(ns.memory_critical, "--memory-critical", mem[1]),
        vcpu_warning=_range(ns.vcpu_warning, "--vcpu-warning", vcpu[0]),
        vcpu_critical=_range(ns.vcpu_critical, "--vcpu-critical", vcpu[1]),
        states=_states(ns.state), include=tuple(ns.include), exclude=tuple(ns.exclude),
        cookie_dir=Path(cookie_dir) if cookie_dir else None,
        timeout=timeout, max_age=_seconds(ns.max_age, "--max-age", zero=True),
        verbose=ns.verbose,
    )
