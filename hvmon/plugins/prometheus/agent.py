"""The ``prometheus`` agent: one :class:`MetricsServer` per listen address.

Scrapes render the daemon's shared snapshot (``ctx.snapshot``) in the servers'
own threads; the daemon's event loop never waits on a scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError
from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import AgentHealth
from hvmon.plugins.prometheus.collector import BUILDERS
from hvmon.plugins.prometheus.httpserver import MetricsServer
from hvmon.plugins.prometheus.scrape import COMPAT_MODES, Scraper
from hvmon.plugins.prometheus.webconfig import WebConfig, load_web_config

if TYPE_CHECKING:
    from hvmon.daemon.context import AgentContext

#: the agent's own keys in ``[agents.prometheus]`` and their defaults
OPTIONS: Mapping[str, Any] = {
    "compat": "hvmon",
    "collectors": list(BUILDERS),
    "web_config_file": "",
    "snapshot_max_age": None,  # None: the daemon's [daemon] snapshot_max_age
}
DEFAULT_LISTEN = ("127.0.0.1:9177",)


def validate_options(options: Mapping[str, Any]) -> Sequence[str]:
    """One problem per bad option of ``[agents.prometheus]``."""
    problems = []
    if options["compat"] not in COMPAT_MODES:
        problems.append(f"compat: must be one of {', '.join(COMPAT_MODES)}, "
                        f"got {options['compat']!r:.40}")
    collectors = options["collectors"]
    if not collectors:
        problems.append("collectors: must name at least one collector group")
    for name in collectors:
        if name not in BUILDERS:
            problems.append(f"collectors: unknown collector {name!r:.40} "
                            f"(known: {', '.join(BUILDERS)})")
    max_age = options["snapshot_max_age"]
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float)
                                or max_age < 0):
        problems.append(f"snapshot_max_age: must be a number of seconds >= 0, got {max_age!r:.40}")
    if options["web_config_file"]:
        try:
            load_web_config(options["web_config_file"])
        except HvmonError as exc:
            problems.append(f"web_config_file: {exc}")
    return problems


class PrometheusAgent:
    """Serves ``/metrics`` on every configured address until stopped."""

    def __init__(self) -> None:
        self._servers: list[MetricsServer] = []
        self._scraper: Scraper | None = None
        self._ctx: AgentContext | None = None

    async def start(self, ctx: AgentContext) -> None:
        """Bind every address (an address in use is a one-line error) and serve."""
        self._ctx = ctx
        options = ctx.config.options
        web = _web_config(options["web_config_file"])
        max_age = options["snapshot_max_age"]
        self._scraper = Scraper(ctx.snapshot.get, groups=options["collectors"],
                                compat=options["compat"],
                                max_age=None if max_age is None else float(max_age))
        for address in ctx.config.listen:
            host, port = parse_address(address)
            server = MetricsServer(host, port, scrape=self._scraper.scrape,
                                   health=self._http_health, web=web)
            try:
                await asyncio.to_thread(server.start)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {address}: "
                                         f"{exc.strerror or exc}") from None
            self._servers.append(server)
            ctx.logger.info("serving metrics on %s", server.url)

    async def stop(self) -> None:
        """Stop every server (safe after a failed start)."""
        servers, self._servers = self._servers, []
        for server in servers:
            await asyncio.to_thread(server.stop)

    def health(self) -> AgentHealth:
        """``ok`` while serving and the daemon has a snapshot; ``degraded`` without one."""
        listening = tuple(format_address(s.host, s.port) for s in self._servers)
        healthy, message = self._http_health()
        return AgentHealth("ok" if healthy else "degraded", "" if healthy else message,
                           listening)

    def _http_health(self) -> tuple[bool, str]:
        if not self._servers or self._ctx is None:
            return False, "not serving"
        if self._ctx.snapshot.current() is None:
            return False, "no snapshot of the host yet"
        return True, "ok"


def _web_config(path: str) -> WebConfig | None:
    return load_web_config(path) if path else None
