"""Who a connection is, what it may do, and the audit of what it does.

:class:`Security` bundles the daemon's access rules and audit log. It builds
each connection's :class:`~hvmon.core.access.AccessGate` (read-only flag,
the caller's :class:`~hvmon.core.access.Identity`, the policy its rules
grant) and runs audited calls: ``begin`` record fsync'd, then the call,
then the ``end`` record. :class:`AuditedDriver` does the same for the
daemon's agents, whose connections call the driver in-process.
"""

from __future__ import annotations

import inspect
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hvmon.core.access import AccessGate, ApiSpec, Identity
from hvmon.core.drivers import SharedDriverRef
from hvmon.core.drivers.base import Driver
from hvmon.daemon.rpc import procedures, resources
from hvmon.daemon.rpc.audit import AuditLog
from hvmon.daemon.rpc.rules import RuleSet

T = TypeVar("T")

_PEERCRED = struct.Struct("3i")


def peer_identity(sock: socket.socket | None, transport: str = "unix") -> Identity:
    """uid/gid/pid of a UNIX socket peer (SO_PEERCRED); an empty identity if unknown."""
    if sock is None or sock.family != socket.AF_UNIX:
        return Identity(transport)
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError:
        return Identity(transport)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return Identity(transport, uid=uid, gid=gid, pid=pid)


@dataclass
class Security:
    """The daemon's access rules (None: no per-user rules) and audit log (None: off)."""

    rules: RuleSet | None = None
    audit: AuditLog | None = None

    def gate(self, who: Identity, readonly: bool) -> AccessGate:
        policy = self.rules.policy_for(who) if self.rules is not None else None
        return AccessGate(readonly=readonly, policy=policy, identity=who)

    def audited(self, spec: ApiSpec, secure: bool) -> bool:
        """Whether a call is recorded: it changes state or reveals secrets."""
        return self.audit is not None and (spec.mutates or secure)

    def run(self, who: Identity, spec: ApiSpec, procedure: str, arguments: Mapping[str, Any],
            driver: Driver, fn: Callable[[], T]) -> T:
        """Run ``fn`` with ``begin`` written (and fsync'd) before and ``end`` after."""
        audit = self.audit
        assert audit is not None
        obj, used = resources.describe(driver, procedure, arguments)
        seq = audit.begin(who, spec, procedure, obj, used)
        try:
            result = fn()
        except BaseException as exc:
            audit.end(seq, who, spec, exc)
            raise
        audit.end(seq, who, spec, None)
        return result


class AuditedDriver(SharedDriverRef):
    """An agent's view of the daemon's driver: audited calls are recorded as the agent's.

    The agent's :class:`~hvmon.core.api.Connection` gate has already allowed
    the call; this only maps the driver method back to its procedure (hence
    its ApiSpec) and records it when :meth:`Security.audited` says so.
    """

    def __init__(self, driver: Driver, security: Security, who: Identity,
                 registry: Mapping[str, ApiSpec]) -> None:
        super().__init__(driver)
        self._security = security
        self._who = who
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._driver, name)
        proc = procedures.procedure_table().get(name)
        if proc is None or proc.kind not in ("driver", "download", "upload") \
                or not callable(value) or self._security.audit is None:
            return value

        def audited(*args: Any, **kwargs: Any) -> Any:
            arguments = _bind(getattr(Driver, name), args, kwargs)
            try:
                spec = proc.resolve(arguments, self._registry)
            except Exception:
                return value(*args, **kwargs)
            if not self._security.audited(spec, procedures.secure_call(spec, arguments)):
                return value(*args, **kwargs)
            return self._security.run(self._who, spec, name, arguments, self._driver,
                                      lambda: value(*args, **kwargs))

        return audited


def _bind(method: Callable[..., Any], args: tuple[Any, ...],
          kwargs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(method).bind(None, *args, **kwargs)
    except TypeError:
        return dict(kwargs)
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "self"}
