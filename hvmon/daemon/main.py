"""``hvmond`` (and ``hvmon serve``): the command line of the daemon.

Exit codes: 0 after a graceful stop, 1 when the daemon cannot run (plugin
error, driver or socket failure), 2 for a bad command line or configuration.
Every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from hvmon.daemon.config import Config, Schema
    from hvmon.daemon.plugins import PluginHost

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The daemon's options (shared by ``hvmond`` and ``hvmon serve``)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="PATH", type=Path,
                        help="TOML configuration (default: /etc/hvmon/hvmon.toml when present)")
    source.add_argument("--no-config", action="store_true",
                        help="ignore /etc/hvmon/hvmon.toml: serve test:///default with every "
                             "in-tree agent on loopback")
    parser.add_argument("--run-dir", metavar="DIR", type=Path,
                        help="directory of the sockets (overrides [daemon] run_dir)")
    parser.add_argument("--state-dir", metavar="DIR", type=Path,
                        help="directory of persistent state (overrides [daemon] state_dir)")


def config_loader(path: Path | None, no_config: bool, schema: Schema) -> Callable[[], Config]:
    """What to read, now and on every SIGHUP: ``path``, the default file, or nothing."""
    from hvmon.daemon.config import DEFAULT_CONFIG_PATH, default_config, load_config

    def load() -> Config:
        if path is not None:
            return load_config(path, schema)
        if not no_config and DEFAULT_CONFIG_PATH.exists():
            return load_config(DEFAULT_CONFIG_PATH, schema)
        return default_config(schema)

    return load


def resolve_dirs(config: Config, run_dir: Path | None,
                 state_dir: Path | None) -> tuple[Path, Path]:
    """Command line, then config, then :mod:`hvmon.core.paths` defaults (absolute)."""
    from hvmon.core.paths import default_run_dir, default_state_dir

    run = run_dir or config.daemon.run_dir or default_run_dir()
    state = state_dir or config.daemon.state_dir or default_state_dir()
    return run.absolute(), state.absolute()


def prepare_dir(path: Path, mode: int) -> None:
    """Create ``path`` (and parents) with ``mode`` when missing; OSError when impossible."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)


def build_host(err: TextIO) -> PluginHost | None:
    """The plugin host, or None after printing why it cannot be built."""
    from hvmon.daemon.plugins import PluginError, build_plugin_host

    try:
        return build_plugin_host()
    except PluginError as exc:
        err.write(f"hvmond: error: {exc}\n")
        return None


def serve(args: argparse.Namespace, *, out: TextIO | None = None,
          err: TextIO | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; return the exit code."""
    import logging

    from hvmon.core.errors import HvmonError
    from hvmon.daemon.app import Daemon
    from hvmon.daemon.config import ConfigError

    out = out or sys.stdout
    err = err or sys.stderr
    host = build_host(err)
    if host is None:
        return EXIT_FAILURE
    schema = host.schema()
    load = config_loader(args.config, args.no_config, schema)
    try:
        config = load()
    except ConfigError as exc:
        err.write(f"hvmond: error: {exc}\n")
        return EXIT_CONFIG
    run_dir, state_dir = resolve_dirs(config, args.run_dir, args.state_dir)
    try:
        prepare_dir(run_dir, 0o755)
        prepare_dir(state_dir, 0o700)
    except OSError as exc:
        err.write(f"hvmond: error: cannot create {exc.filename}: {exc.strerror}\n")
        return EXIT_FAILURE
    daemon = Daemon(host, schema, config, run_dir=run_dir, state_dir=state_dir, load=load,
                    out=out, log_stream=err)
    daemon.apply_logging()
    log = logging.getLogger("hvmon.daemon")
    for problem in host.problems:
        log.warning("%s", problem)
    import asyncio  # not at the top: `hvmon` builds this parser for every command

    try:
        asyncio.run(daemon.serve())
    except HvmonError as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    except OSError as exc:
        log.error("%s", exc.strerror or exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    except Exception as exc:  # a bug: one line unless HVMON_DEBUG asks for the traceback
        if os.environ.get("HVMON_DEBUG"):
            raise
        log.error("internal error: %s: %s", type(exc).__name__, exc)
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """``hvmond [--config PATH | --no-config] [--run-dir DIR] [--state-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="hvmond", description="hvmon daemon: serves one driver to local clients and runs "
                                   "the enabled agents.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    return serve(args, out=out, err=err)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
