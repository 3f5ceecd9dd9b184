"""An in-process hvmond with the ``cim`` plugin, driven from a loop thread."""

from __future__ import annotations

import contextlib
import io
import socket
from pathlib import Path
from typing import Any

from loopthread import LoopThread


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonThread:
    def __init__(self, runner: LoopThread, tmp_path: Path, data: dict[str, Any]) -> None:
        import hvmon.plugins.cim.plugin as plugin_module
        from hvmon.daemon.app import Daemon
        from hvmon.daemon.config import parse_config
        from hvmon.daemon.plugins import build_plugin_host

        host = build_plugin_host(plugins=[(plugin_module, "cim-test")], disabled=("cim",))
        schema = host.schema()
        config = parse_config(data, schema)
        self.runner = runner
        self.daemon = Daemon(host, schema, config, run_dir=tmp_path / "run",
                             state_dir=tmp_path / "state", rpc=False, out=io.StringIO())
        runner.call(self.daemon.start())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.runner.call(self.daemon.stop())


def cim_config(port: int, *, control: bool, allow_control: bool = True,
               **options: Any) -> dict[str, Any]:
    return {"daemon": {"uri": "test:///default", "allow_control": allow_control,
                       "snapshot_interval": 0, "restart_delay": 0.05, "restart_delay_max": 0.2,
                       "health_interval": 0.05},
            "agents": {"cim": {"enabled": True, "control": control,
                               "listen": [f"127.0.0.1:{port}"], **options}}}
