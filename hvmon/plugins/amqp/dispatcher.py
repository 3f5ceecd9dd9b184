"""Run one decoded request: find the method, check its arguments and caller, call it.

The call runs in a worker thread under a deadline (the event loop never
waits on the driver); a timeout becomes ``OperationTimeout``. Every failure is
a reply body with a structured error ``{code, name, text}``, never an exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hvmon.core.errors import HvmonError, InternalError, OperationTimeout, Unsupported
from hvmon.plugins.amqp.methods import Call, Method, authorize, build_methods
from hvmon.plugins.amqp.schema import Request, reply_body

if TYPE_CHECKING:
    from hvmon.core.api import Connection
    from hvmon.core.snapshot.model import Snapshot


class Dispatcher:
    """Maps method names to calls on ``connection`` (the gate) or the snapshot."""

    def __init__(self, connection: Connection, snapshot: Callable[[], Snapshot], *,
                 host: str, allowed_users: Iterable[str], timeout: float,
                 refresh: Callable[[], object] | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.connection = connection
        self.snapshot = snapshot
        self.host = host
        self.allowed = frozenset(allowed_users)
        self.timeout = timeout
        self.refresh = refresh
        self.log = logger or logging.getLogger(__name__)
        self.methods: dict[str, Method] = build_methods()
        #: requests whose method body ran (not answered from the request log)
        self.executed = 0

    async def execute(self, request: Request, user: str | None) -> dict[str, Any]:
        """The reply body for ``request`` made by AMQP user ``user``."""
        try:
            method = self.methods.get(request.method)
            if method is None:
                raise Unsupported(f"unknown method {request.method[:80]!r} "
                                  "(see docs/amqp.md for the list)")
            args = method.check_args(request.args)
            authorize(method, args, user, self.allowed)
            self.executed += 1
            async with asyncio.timeout(self.timeout):
                result = await asyncio.to_thread(self._run, method, args)
        except HvmonError as exc:
            return reply_body(self.host, request.id, request.method, error=exc)
        except TimeoutError:
            error = OperationTimeout(f"{request.method} did not finish within "
                                     f"{self.timeout:g} s")
            return reply_body(self.host, request.id, request.method, error=error)
        except Exception as exc:  # noqa: BLE001 - a bug must become an error reply
            self.log.exception("method %s failed", request.method)
            error = InternalError(f"{request.method}: {type(exc).__name__}: {exc}")
            return reply_body(self.host, request.id, request.method, error=error)
        if method.mutates:
            self.log.info("%s by %s: done", request.method, user)
        return reply_body(self.host, request.id, request.method, result=result)

    def _run(self, method: Method, args: dict[str, Any]) -> Any:
        result = method.run(Call(self.connection, self.snapshot, args))
        if method.mutates and self.refresh is not None:
            try:  # so reads (and data indications) after the reply show the change
                self.refresh()
            except HvmonError as exc:
                self.log.warning("snapshot refresh after %s failed: %s", method.name, exc)
        return result
