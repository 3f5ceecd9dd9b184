"""A tiny third-party plugin package, built as a real wheel in a temporary directory.

``hvmon-tiny`` 1.2.3 registers, through its own ``hvmon.plugins`` entry points,
the plugin ``tiny`` (agents ``tiny`` and ``tiny-quiet``, the command
``tiny-hello`` and a ``[tiny]`` config table) and the plugin ``tiny-broken``,
whose module cannot be imported.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "hvmon-tiny", "1.2.3"
DIST = "hvmon_tiny"

PLUGIN_SOURCE = '''\
"""hvmon-tiny: a third-party hvmon plugin (hvmon's tests build and install it)."""

import asyncio
import os

from hvmon.cli.command import Command
from hvmon.daemon.addresses import format_address, parse_address
from hvmon.daemon.agent import AgentHealth, AgentSpec
from hvmon.daemon.config import ConfigSection
from hvmon.hookspecs import hookimpl


class TinyAgent:
    """Notes each start and stop in <run_dir>/<name>.log; greets TCP clients."""

    def __init__(self):
        self.ctx = None
        self.servers = []
        self.listening = ()

    async def start(self, ctx):
        self.ctx = ctx
        for address in ctx.config.listen:
            host, port = parse_address(address)
            self.servers.append(await asyncio.start_server(self._greet, host, port))
        self.listening = tuple(format_address(*s.sockets[0].getsockname()[:2])
                               for s in self.servers)
        greeting = ctx.config.options["greeting"]
        self._note("start", f"greeting={greeting} readonly={ctx.readonly} "
                            f"listening={','.join(self.listening)}")
        ctx.logger.info("tiny agent %s started", ctx.name)

    async def _greet(self, reader, writer):
        writer.write((self.ctx.config.options["greeting"] + "\\n").encode())
        await writer.drain()
        writer.close()

    async def stop(self):
        for server in self.servers:
            server.close()
            await server.wait_closed()
        self.servers = []
        if self.ctx is not None:
            self._note("stop", "")

    def health(self):
        return AgentHealth("ok", "", self.listening)

    def _note(self, what, detail):
        with open(self.ctx.run_dir / f"{self.ctx.name}.log", "a") as stream:
            stream.write(f"{what} {os.getpid()} {detail}\\n")


def _check(options):
    return [] if options["greeting"] else ["greeting: must not be empty"]


@hookimpl
def hvmon_add_agents():
    return [
        AgentSpec("tiny", TinyAgent, "greets TCP clients", listen=("127.0.0.1:0",),
                  options={"greeting": "hello"}, validate=_check),
        AgentSpec("tiny-quiet", TinyAgent, "listens nowhere", options={"greeting": "hush"}),
    ]


def _hello(ctx, args):
    ctx.write("hello from hvmon-tiny\\n")


@hookimpl
def hvmon_add_cli_commands():
    return [Command("tiny-hello", "say hello", _hello)]


@hookimpl
def hvmon_config_schema():
    return [ConfigSection("tiny", {"motto": "small is beautiful"})]
'''

BROKEN_SOURCE = 'raise ImportError("this plugin is broken on purpose")\n'

ENTRY_POINTS = f"""\
[hvmon.plugins]
tiny = {DIST}
tiny-broken = {DIST}_broken
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path) -> Path:
    """Write ``hvmon_tiny-1.2.3-py3-none-any.whl`` into ``directory`` and return its path."""
    info = f"{DIST}-{VERSION}.dist-info"
    files = {
        f"{DIST}/__init__.py": PLUGIN_SOURCE.encode(),
        f"{DIST}_broken/__init__.py": BROKEN_SOURCE.encode(),
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
                             "Summary: a tiny third-party hvmon plugin\n").encode(),
        f"{info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: hvmon-tests\n"
                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
        f"{info}/entry_points.txt": ENTRY_POINTS.encode(),
        f"{info}/top_level.txt": f"{DIST}\n{DIST}_broken\n".encode(),
    }
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{DIST}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
