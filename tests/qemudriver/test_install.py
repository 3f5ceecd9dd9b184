"""``hvmon install``: virt-install style guest creation on the QEMU driver."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hvmon.cli import install
from hvmon.core.xml.parser import parse_xml

from .conftest import Cli


@pytest.mark.parametrize(("text", "message"), [
    ("vol=pool", "POOL/VOLUME"),
    ("vol=p/v,perms=xx", "invalid perms"),
    ("vol=p/v,bus=usb", "invalid bus"),
    ("size=abc,pool=p", "invalid disk size"),
    ("size=4", "needs pool=POOL"),
    ("vol=p/v,path=/x", "exactly one"),
    ("vol=p/v,colour=red", "unknown --disk option 'colour'"),
])
def test_disk_option_errors(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        install.parse_disk(text)


def test_parse_disk_values() -> None:
    spec = install.parse_disk("vol=kvmguests/unit:0:0:2,perms=sh,bus=sata")
    assert (spec.vol, spec.perms, spec.bus) == ("kvmguests/unit:0:0:2", "sh", "sata")
    assert install.parse_disk("/var/lib/x.img,format=qcow2").path == "/var/lib/x.img"


def test_install_on_a_new_pool_volume_and_a_file(open_qemu, qemu_root: Path, domain_type: str,
                                                 capsys, disk_image) -> None:
    conn = open_qemu()
    cli = Cli(conn, capsys)
    images = qemu_root / "images"
    pool = conn.define_pool_xml(f"<pool type='dir'><name>default</name><target><path>{images}"
                                "</path></target></pool>")
    pool.build()
    pool.start()
    extra = disk_image("extra")
    argv = ["install", "--name", "web", "--memory", "64", "--vcpus", "2", "--disk",
            "size=0.0625,pool=default", "--disk", f"path={extra},format=qcow2,perms=sh",
            "--boot", "hd", "--graphics", "vnc", "--virt-type", domain_type]
    printed = cli(*argv, "--print-xml")
    root = parse_xml(printed)
    assert root.get("type") == domain_type and root.findtext("vcpu") == "2"
    disks = root.findall("devices/disk")
    assert disks[0].get("type") == "volume" and disks[0].find("source").get("volume") == \
        "web.qcow2"
    assert disks[1].find("source").get("file") == str(extra)
    assert disks[1].find("shareable") is not None
    assert root.find("devices/graphics").get("listen") == "127.0.0.1"
    assert "web.qcow2" not in [v.name for v in pool.list_volumes()]  # --print-xml made nothing
    out = cli(*argv)
    assert "Created volume(s) default/web.qcow2" in out and "Domain 'web' defined and started" \
        in out
    dom = conn.lookup_domain_by_name("web")
    try:
        assert dom.is_active()
        assert pool.lookup_volume_by_name("web.qcow2").info().capacity == 64 * 1024**2
        assert f'<source file="{images}/web.qcow2"/>' in dom.xml_desc()
    finally:
        dom.destroy()
    again = cli(*argv, code=1)  # the name is taken: one error line
    assert again.startswith("error: ") and again.count("\n") == 1


def test_install_errors_are_one_line(open_qemu, capsys, domain_type: str) -> None:
    conn = open_qemu()
    cli = Cli(conn, capsys)
    out = cli("install", "--name", "x", "--memory", "64", "--disk", "vol=nopool/v",
              "--virt-type", domain_type, code=1)
    assert out.startswith("error: ") and "nopool" in out
    out = cli("install", "--name", "x", "--memory", "64", "--virt-type", domain_type, code=1)
    assert "nothing to boot from" in out
    out = cli("install", "--name", "x", "--memory", "64", "--disk", "path=/no/such/file",
              "--virt-type", domain_type, code=1)
    assert "No such file" in out
    assert conn.list_all_domains() == []


def test_network_options_build_the_interfaces(open_qemu, capsys, domain_type: str) -> None:
    cli = Cli(open_qemu(), capsys)
    printed = cli("install", "--name", "netty", "--memory", "64", "--pxe", "--network",
                  "network=default,mac=52:54:00:12:34:56,filterref=clean-traffic",
                  "--network", "bridge=br0,model=e1000", "--virt-type", domain_type,
                  "--print-xml")
    nics = parse_xml(printed).findall("devices/interface")
    assert [(n.get("type"), n.find("model").get("type")) for n in nics] == [
        ("network", "virtio"), ("bridge", "e1000")]
    assert nics[0].find("source").get("network") == "default"
    assert nics[0].find("mac").get("address") == "52:54:00:12:34:56"
    assert nics[0].find("filterref").get("filter") == "clean-traffic"
    assert nics[1].find("source").get("bridge") == "br0"
    assert parse_xml(printed).find("os/boot").get("dev") == "network"  # PXE from --network
    out = cli("install", "--name", "bad", "--memory", "64", "--network", "wifi=home",
              "--print-xml", code=2)
    assert "start with network=NAME, bridge=BRIDGE or user" in out
