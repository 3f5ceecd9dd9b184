"""VNC on loopback: the password goes through QMP, never the command line or the XML."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from lxml import etree

import hvmon

from .conftest import guest_xml

VNC = "\n    <graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='s3cret-pw'/>"


def security_types(port: int) -> list[int]:
    """The RFB security types a VNC server offers (RFC 6143 7.1.2)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        version = sock.recv(12)
        assert version.startswith(b"RFB 003.")
        sock.sendall(b"RFB 003.008\n")
        count = sock.recv(1)[0]
        return list(sock.recv(count))


def test_vnc_password_is_set_through_qmp(open_qemu: Callable[..., hvmon.Connection],
                                         qemu_root: Path, domain_type: str) -> None:
    conn = open_qemu()
    dom = conn.define_domain_xml(guest_xml("viewer", domain_type, extra=VNC))
    assert "s3cret-pw" not in dom.xml_desc()  # secrets only with the secure flag
    dom.create()
    graphics = etree.fromstring(dom.xml_desc().encode()).find("devices/graphics")
    port = int(graphics.get("port"))
    assert port >= 5900
    assert security_types(port) == [2]  # VNC authentication only: the password is on
    pid = conn.driver.running_pids()["viewer"]
    assert b"s3cret-pw" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert "s3cret-pw" not in (qemu_root / "log/qemu/viewer.log").read_text()
    vnc = conn.driver.lifecycle.execute(conn.driver.registry.find("name", "viewer"),
                                        "query-vnc")
    assert vnc["enabled"] and vnc["host"] == "127.0.0.1" and vnc["service"] == str(port)
    assert vnc["auth"] == "vnc"
