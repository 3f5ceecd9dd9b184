"""Assembles the WBEM server: schema, model, providers, methods, subscriptions, HTTP.

Used by the agent and, without a daemon, by tests and benchmarks.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hvmon.plugins.cim.associations import association_providers
from hvmon.plugins.cim.auth import BasicAuth
from hvmon.plugins.cim.httpserver import HttpServer
from hvmon.plugins.cim.indications import Subscriptions
from hvmon.plugins.cim.methods import Methods
from hvmon.plugins.cim.model import Model
from hvmon.plugins.cim.operations import Dispatcher
from hvmon.plugins.cim.providers import model_providers
from hvmon.plugins.cim.schema import VIRT, load_schemas
from hvmon.plugins.cim.service import WbemService

if TYPE_CHECKING:
    from hvmon.core.api import Connection, DomainEvent
    from hvmon.core.snapshot.model import Snapshot

#: where subscriptions are kept, in the agent's state directory
SUBSCRIPTIONS_FILE = "cim-subscriptions.json"


class CimServer:
    """Everything but the sockets; :meth:`listen` adds HTTP(S) servers."""

    def __init__(self, connection: Connection, snapshot: Callable[[], Snapshot],
                 refresh: Callable[[], Snapshot], *, prefix: str = "KVM_",
                 users: Mapping[str, str] | None = None, timeout: float = 30.0,
                 max_request_bytes: int = 4 * 1024 * 1024, max_subscriptions: int = 100,
                 indication_timeout: float = 5.0, state_dir: Path | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("hvmon.plugins.cim")
        self.schemas = load_schemas(prefix)
        self.model = Model(connection, snapshot, prefix)
        store = state_dir / SUBSCRIPTIONS_FILE if state_dir is not None else None
        self.subscriptions = Subscriptions(self.schemas, self.model, limit=max_subscriptions,
                                           timeout=indication_timeout, store=store,
                                           logger=self.log)
        methods = Methods(self.schemas[VIRT].qualifiers, refresh)
        self.dispatcher = Dispatcher(
            self.schemas, self.model,
            [*model_providers(), *association_providers(), *self.subscriptions.providers()],
            methods, self.subscriptions.create, self.subscriptions.delete, refresh)
        self.service = WbemService(self.dispatcher, BasicAuth(users or {}), timeout=timeout,
                                   logger=self.log)
        self.max_request_bytes = max_request_bytes
        self.servers: list[HttpServer] = []

    async def listen(self, addresses: Sequence[tuple[str, int]],
                     tls: ssl.SSLContext | None = None) -> list[HttpServer]:
        started = []
        for host, port in addresses:
            server = HttpServer(host, port, self.service, tls=tls,
                                max_body=self.max_request_bytes, logger=self.log)
            await server.start()
            self.servers.append(server)
            started.append(server)
        return started

    async def stop(self) -> None:
        servers, self.servers = self.servers, []
        for server in servers:
            await server.stop()

    async def on_event(self, event: DomainEvent) -> None:
        """Deliver the indication for one lifecycle event (errors are logged)."""
        try:
            await self.subscriptions.deliver(event)
        except Exception as exc:  # one bad event must not end delivery
            self.log.warning("no indication for %s: %s", event.describe(), exc)
