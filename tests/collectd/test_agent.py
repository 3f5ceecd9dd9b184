"""The ``collectd`` agent in an in-process daemon: options, packets, notifications, stalls, health.

Packets go to a Python UDP socket here (the real collectd receives them in
test_collectd_network.py) and are read back with the test decoder.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from hvmon.daemon.config import ConfigError
from hvmon.daemon.context import shared_connection
from hvmon.plugins.collectd.agent import OPTIONS, Target, parse_servers

from .conftest import free_udp_port, make_daemon, run_daemon
from .test_network import decode


class Inbox:
    """A UDP socket on loopback; ``values()``/``notes()`` decode what arrived."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def drain(self) -> None:
        while True:
            try:
                self.packets.append(self.sock.recv(65535))
            except BlockingIOError:
                return

    def values(self) -> list[dict[str, Any]]:
        self.drain()
        return [v for p in self.packets for v in decode(p)[0]]

    def notes(self) -> list[dict[str, Any]]:
        self.drain()
        return [n for p in self.packets for n in decode(p)[1]]


@pytest.fixture
def inbox() -> Any:
    box = Inbox()
    yield box
    box.sock.close()


async def until(predicate: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def test_defaults() -> None:
    assert OPTIONS["servers"] == [{"address": "127.0.0.1:25826"}]
    assert OPTIONS["interval"] == 10.0 and OPTIONS["plugin_instance_format"] == "name"


@pytest.mark.parametrize(("burst", "pause", "sleeps"), [
    (64, 0.001, [0.001] * 3),  # 200 packets: 64 + 64 + 64 + 8, a pause between bursts
    (0, 0.001, []),            # unpaced
    (64, 0.0, []),
])
def test_packets_go_out_in_bursts_with_pauses(burst: int, pause: float,
                                              sleeps: list[float]) -> None:
    order: list[object] = []

    class Socket:
        def send(self, packet: bytes) -> int:
            order.append(packet)
            return len(packet)

    target = Target(parse_servers([{"address": "127.0.0.1:25826"}])[0][0], 1452, burst, pause,
                    sleep=order.append)
    target.sock = Socket()  # type: ignore[assignment]
    packets = [i.to_bytes(2, "big") for i in range(200)]
    target.send(packets)
    assert [x for x in order if isinstance(x, bytes)] == packets and target.sent == 200
    assert [x for x in order if isinstance(x, float)] == sleeps
    if sleeps:  # each pause sits right after a full burst
        assert [i for i, x in enumerate(order) if isinstance(x, float)] == [64, 129, 194]


@pytest.mark.parametrize(("options", "problem"), [
    ({"servers": []}, "agents.collectd: servers: must be a non-empty list of tables"),
    ({"servers": ["127.0.0.1:25826"]}, "agents.collectd: servers[0]: must be a table like"),
    ({"servers": [{"address": "127.0.0.1"}]},
     "agents.collectd: servers[0].address: address '127.0.0.1' must be HOST:PORT"),
    ({"servers": [{"address": "::1:25826"}]}, "write IPv6 hosts in brackets"),
    ({"servers": [{"address": "127.0.0.1:0"}]}, "needs a port (collectd listens on 25826)"),
    ({"servers": [{"security_level": "tls"}]},
     "servers[0].security_level: must be one of none, sign, encrypt, got 'tls'"),
    ({"servers": [{"security_level": "sign", "password": "hunter2"}]},
     "servers[0]: security_level 'sign' needs a username and a password"),
    ({"servers": [{"address": "127.0.0.1:25826", "pasword": "hunter2"}]},
     "servers[0]: unknown key(s) pasword (known: address, security_level, username, password)"),
    ({"servers": [{"password": 42}]}, "servers[0]: password must be a string"),
    ({"interval": 0}, "agents.collectd: interval: must be a positive number of seconds, got 0"),
    ({"interval": "fast"}, "agents.collectd.interval: must be a number"),
    ({"plugin_instance_format": "metadata"}, "plugin_instance_format: must be one of name, uuid"),
    ({"stale": "nan"}, "stale: must be one of skip, last, got 'nan'"),
    ({"max_packet_size": 65536}, "max_packet_size: must be from 256 to 65507 bytes"),
    ({"snapshot_max_age": -1}, "snapshot_max_age: must be a number of seconds >= 0"),
    ({"burst_packets": -1}, "burst_packets: must be a whole number >= 0, got -1"),
    ({"burst_pause": 5}, "burst_pause: must be from 0 to 1 second, got 5"),
    ({"listen": "127.0.0.1:25826"}, "agents.collectd.listen: agent 'collectd' does not listen"),
])
def test_bad_options_are_one_line_each_and_never_show_the_password(
        tmp_path: Path, options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_daemon(tmp_path, options)
    lines = str(caught.value).splitlines()
    assert any(problem in line for line in lines), lines
    assert "hunter2" not in str(caught.value)


def test_pushes_value_lists_and_notifications(tmp_path: Path, inbox: Inbox,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    daemon = make_daemon(tmp_path, {"servers": [{"address": inbox.address,
                                                 "security_level": "sign", "username": "hv",
                                                 "password": "hunter2"}],
                                    "interval": 0.2, "hostname": "hv1"})

    async def body() -> None:
        await until(lambda: len({v["time"] for v in inbox.values()}) >= 3, 10, "three pushes")
        values = inbox.values()
        cpu = [v["values"][0] for v in values
               if (v["plugin_instance"], v["type"]) == ("test", "virt_cpu_total")]
        assert len(cpu) >= 3 and cpu == sorted(cpu) and cpu[-1] > cpu[0]
        assert {v["interval"] for v in values} == {int(0.2 * 2**30)}
        assert daemon.info()["agents"]["collectd"]["status"] == "ok"
        assert daemon.driver is not None
        control = shared_connection(daemon.driver, readonly=False)
        await asyncio.to_thread(control.lookup_domain_by_name("test").suspend)
        notes = await until(inbox.notes, 5, "the notification")
        assert notes[0]["message"] == "Domain state: paused. Reason: paused"
        assert (notes[0]["severity"], notes[0]["plugin"], notes[0]["plugin_instance"],
                notes[0]["type"]) == (2, "virt", "test", "domain_state")
        await asyncio.to_thread(control.lookup_domain_by_name("test").resume)

    run_daemon(daemon, body)
    assert inbox.packets[0][:2] == b"\x02\x00"  # signed
    assert any("sending to collectd at 127.0.0.1:" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if "hunter2" in r.getMessage()]


def test_ipv6_server(tmp_path: Path) -> None:
    try:
        box = Inbox("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        daemon = make_daemon(tmp_path, {"servers": [{"address": f"[::1]:{box.port}"}],
                                        "interval": 0.2, "hostname": "hv1"})

        async def body() -> None:
            await until(box.values, 10, "packets over IPv6")

        run_daemon(daemon, body)
    finally:
        box.sock.close()


def test_a_stalled_domain_never_delays_the_others(tmp_path: Path, inbox: Inbox) -> None:
    """``web1``'s stats hang for 60 s; ``web2`` still arrives every interval."""
    node = tmp_path / "node.xml"
    domain = ("<domain type='test'><name>{0}</name><memory>524288</memory><vcpu>1</vcpu>"
              "<os><type>hvm</type></os></domain>")
    node.write_text(f"<node>{domain.format('web1')}{domain.format('web2')}</node>")
    daemon = make_daemon(tmp_path, {"servers": [{"address": inbox.address}], "interval": 0.3,
                                    "hostname": "hv1"},
                         uri=f"test://{node}?stall=web1:60", snapshot_deadline=0.2)

    async def body() -> None:
        start = time.monotonic()
        await until(lambda: len([v for v in inbox.values()
                                 if (v["plugin_instance"], v["type"])
                                 == ("web2", "virt_cpu_total")]) >= 4, 10, "web2, four times")
        assert time.monotonic() - start < 5
        assert not [v for v in inbox.values() if v["plugin_instance"] == "web1"]
        stale = [v["values"] for v in inbox.values() if v["type_instance"] == "domains_stale"]
        assert stale[-1] == (1.0,)

    run_daemon(daemon, body)


def test_health_reports_a_server_that_refuses(tmp_path: Path) -> None:
    port = free_udp_port("127.0.0.1")  # nothing listens: ICMP port unreachable
    daemon = make_daemon(tmp_path, {"servers": [{"address": f"127.0.0.1:{port}"}],
                                    "interval": 0.1, "hostname": "hv1"})

    async def body() -> None:
        status = await until(lambda: (s := daemon.info()["agents"]["collectd"])["status"]
                             == "degraded" and s, 10, "a degraded status")
        assert status["message"] == f"127.0.0.1:{port}: Connection refused"
        assert status["restarts"] == 0  # degraded, still pushing

    run_daemon(daemon, body)
