"""The client side of the daemon protocol (docs/protocol.md).

:class:`RemoteDriver` implements the core Driver interface over a UNIX socket
to hvmond; :mod:`.framing` and :mod:`.codec` are shared with the server in
``hvmon.daemon.rpc``.
"""

from hvmon.core.drivers.remote.driver import RemoteDriver, RemoteEventBus

__all__ = ["RemoteDriver", "RemoteEventBus"]
