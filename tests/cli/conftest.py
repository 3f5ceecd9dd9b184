"""Fixtures: one shared test:///default connection driven through ``main``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

import hvmon
from hvmon.cli.main import main
from hvmon.core.access import AccessGate
from hvmon.core.api import Connection

DOMAIN_XML = """\
<domain type='test'>
  <name>{name}</name>
  <memory unit='MiB'>512</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='{network}'/>
    </interface>
  </devices>
</domain>
"""

POOL_XML = """\
<pool type='dir'>
  <name>{name}</name>
  <target><path>/{name}</path></target>
</pool>
"""

NETWORK_XML = """\
<network>
  <name>{name}</name>
  <bridge name='virbr9'/>
  <ip address='10.9.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.9.0.2' end='10.9.0.254'/></dhcp>
  </ip>
</network>
"""

SECRET_XML = """\
<secret ephemeral='no' private='no'>
  <description>ceph key</description>
  <usage type='ceph'><name>client.admin</name></usage>
</secret>
"""


@pytest.fixture
def xmls() -> SimpleNamespace:
    """XML templates (``domain`` and ``network`` take ``name``; ``domain`` also ``network``)."""
    return SimpleNamespace(domain=DOMAIN_XML, pool=POOL_XML, network=NETWORK_XML,
                           secret=SECRET_XML)


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def conn() -> Iterator[Connection]:
    connection = hvmon.open("test:///default")
    yield connection
    connection.close()


@pytest.fixture
def cli(conn: Connection, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``hvmon ARGS`` in-process on the shared connection.

    ``-r`` gets a read-only view of the same driver, so a test can prove that
    a refused call changed nothing.
    """

    def connect(uri: str, readonly: bool) -> Connection:
        return Connection(conn.driver, AccessGate(readonly=True)) if readonly else conn

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv), connect=connect)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], str]:
    """Write a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return _write
