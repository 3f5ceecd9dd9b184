"""hvmond serving the QEMU driver: guests survive a daemon restart, which reattaches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import hvmon
from hvmon.core.drivers.qemu import process
from hvmon.core.types import DomainState

from .conftest import guest_xml, remove_root

HVMOND = Path(sys.executable).parent / "hvmond"


class Hvmond:
    """One hvmond process on ``qemu:///embed?root=ROOT`` (no agents)."""

    def __init__(self, root: Path, query: str = "", extra: str = "") -> None:
        self.root = root
        self.query = query
        self.run = root / "daemon-run"
        self.log = root / f"hvmond-{time.monotonic_ns()}.log"
        config = root / "hvmond.toml"
        config.write_text(f'[daemon]\nuri = "qemu:///embed?root={root}{query}"\n'
                          f"snapshot_interval = 0\n{extra}")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["HVMON_DISABLE_PLUGINS"] = "prometheus,snmp,collectd"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(HVMOND), "--config", str(config), "--run-dir",
                                          str(self.run), "--state-dir", str(root / "state")],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        end = time.monotonic() + 30
        while "\nready " not in "\n" + self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                pytest.fail(f"hvmond did not get ready: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    @property
    def uri(self) -> str:
        return (f"qemu+unix:///embed?root={quote(str(self.root))}{self.query}"
                f"&socket={quote(str(self.run / 'hvmon-sock'))}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


@pytest.fixture
def daemons(qemu_root: Path) -> Iterator[list[Hvmond]]:
    started: list[Hvmond] = []
    try:
        yield started
    finally:
        for daemon in started:
            daemon.stop()


def test_guests_run_on_across_a_daemon_restart(qemu_root: Path, daemons: list[Hvmond],
                                               domain_type: str) -> None:
    daemons.append(Hvmond(qemu_root))
    with hvmon.open(daemons[0].uri) as conn:
        assert "pc-i440fx" in conn.capabilities()  # served by the daemon's QEMU driver
        dom = conn.define_domain_xml(guest_xml("survivor", domain_type))
        dom.create()
        dom_id = dom.get_id()
    status = process.read_status(qemu_root / "run/qemu/survivor.status.json")
    assert status is not None and process.alive(status.pid, status.uuid)

    assert daemons[0].stop() == 0
    assert process.alive(status.pid, status.uuid)  # the guest never noticed

    daemons.append(Hvmond(qemu_root))
    with hvmon.open(daemons[1].uri) as conn:
        dom = conn.lookup_domain_by_name("survivor")
        assert dom.state()[0] == DomainState.RUNNING and dom.get_id() == dom_id
        dom.suspend()
        assert dom.state()[0] == DomainState.PAUSED
        dom.destroy()
        assert dom.state()[0] == DomainState.SHUTOFF
    assert not process.alive(status.pid, status.uuid)


def test_migration_between_two_daemons(daemons: list[Hvmond], domain_type: str) -> None:
    roots = [Path(tempfile.mkdtemp(prefix=f"hvd{n}-")) for n in "ab"]
    try:
        daemons.extend(Hvmond(root) for root in roots)
        with hvmon.open(daemons[0].uri) as a, hvmon.open(daemons[1].uri) as b:
            dom = a.define_domain_xml(guest_xml("nomad", domain_type))
            dom.create()
            moved = dom.migrate(b, live=True, persistent=True, undefine_source=True)
            assert moved.state()[0] == DomainState.RUNNING and moved.is_persistent()
            assert a.list_all_domains() == []
            assert [d.name for d in b.list_all_domains()] == ["nomad"]
            # back, peer to peer and tunnelled: B's daemon carries QEMU's stream to A's
            # over their own connection (no migration port)
            assert moved.migrate(daemons[0].uri, live=True, p2p=True, tunnelled=True) is None
            back = a.lookup_domain_by_name("nomad")
            assert back.state()[0] == DomainState.RUNNING
            assert moved.state()[0] == DomainState.SHUTOFF
            back.suspend()  # A's monitor drives the guest that came through the tunnel
            back.destroy()
    finally:
        for daemon in daemons:
            daemon.stop()
        for root in roots:
            remove_root(root)
