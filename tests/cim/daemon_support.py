"""Port and configuration of the in-process hvmond with the ``cim`` plugin
(``loopthread.DaemonThread(..., "cim")``)."""

from __future__ import annotations

import socket
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cim_config(port: int, *, control: bool, allow_control: bool = True,
               **options: Any) -> dict[str, Any]:
    return {"daemon": {"uri": "test:///default", "allow_control": allow_control,
                       "snapshot_interval": 0, "restart_delay": 0.05, "restart_delay_max": 0.2,
                       "health_interval": 0.05},
            "agents": {"cim": {"enabled": True, "control": control,
                               "listen": [f"127.0.0.1:{port}"], **options}}}
