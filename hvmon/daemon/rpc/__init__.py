"""The daemon's side of the remote protocol (docs/protocol.md).

:class:`RpcServer` serves a driver on a read-write and a read-only UNIX socket;
:mod:`.procedures` maps every procedure to the API rule that governs it.
"""

from hvmon.daemon.rpc.server import RpcServer

__all__ = ["RpcServer"]
