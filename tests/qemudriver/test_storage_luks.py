"""LUKS volumes: made with qemu-img and a secret object, used by a running guest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hvmon.core.errors import HvmonError
from hvmon.core.types import DomainState

PASSPHRASE = b"correct-horse-battery-staple-42"


def guest(name: str, kind: str, disks: str) -> str:
    return f"""<domain type='{kind}'><name>{name}</name><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices>{disks}<memballoon model='virtio'/></devices></domain>"""


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_luks_volume_used_by_a_running_guest(open_qemu, qemu_root: Path, domain_type: str,
                                             fmt: str) -> None:
    conn = open_qemu()
    images = qemu_root / "images"
    pool = conn.define_pool_xml(f"<pool type='dir'><name>enc</name><target><path>{images}"
                                "</path></target></pool>")
    pool.build()
    pool.start()
    path = images / f"secret.{fmt}"
    sec = conn.define_secret_xml("<secret ephemeral='no' private='yes'><usage type='volume'>"
                                 f"<volume>{path}</volume></usage></secret>")
    sec.set_value(PASSPHRASE)
    vol = pool.create_volume_xml(
        f"<volume><name>{path.name}</name><capacity unit='MiB'>16</capacity><target>"
        f"<format type='{fmt}'/><encryption format='luks'><secret type='passphrase' "
        f"uuid='{sec.uuid}'/></encryption></target></volume>")
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                          capture_output=True, text=True, check=True).stdout
    data = json.loads(info)
    assert data["format"] == ("luks" if fmt == "raw" else "qcow2") and \
        (fmt == "raw" or data["encrypted"])
    assert f'uuid="{sec.uuid}"' in vol.xml_desc() and vol.info().capacity == 16 * 1024**2
    pool.refresh()  # the secret is found again by the volume's path
    assert f'uuid="{sec.uuid}"' in pool.lookup_volume_by_name(path.name).xml_desc()

    dom = conn.define_domain_xml(guest("luks", domain_type, f"""
      <disk type='volume' device='disk'><source pool='enc' volume='{path.name}'/>
        <target dev='vda' bus='virtio'/></disk>"""))
    dom.create()
    try:
        assert dom.state()[0] == DomainState.RUNNING
        pid = conn.driver.running_pids()["luks"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert PASSPHRASE not in argv
        assert b"secret,id=virtio-disk0-luks-secret0,file=" in argv
        blocks = conn.driver.lifecycle.execute(conn.driver.registry.get(dom.uuid),
                                               "query-named-block-nodes", {})
        drivers = {b["drv"] for b in blocks}
        assert ("luks" if fmt == "raw" else "qcow2") in drivers
        live = dom.xml_desc(secure=True)
        assert f'<encryption format="luks"><secret type="passphrase" uuid="{sec.uuid}"/>' in live
        texts = [dom.xml_desc(), live, dom.xml_desc(inactive=True), vol.xml_desc(),
                 sec.xml_desc(), pool.xml_desc()]
        assert not any(PASSPHRASE.decode() in t for t in texts)
        for file in list(qemu_root.rglob("*.xml")) + list(qemu_root.rglob("*.log")) + \
                list(qemu_root.rglob("*.json")):
            assert PASSPHRASE not in file.read_bytes(), file
    finally:
        dom.destroy()
    assert not list((qemu_root / "run/qemu").glob("*.secrets"))
    if fmt == "raw":  # a wrong passphrase: QEMU refuses the volume, the start fails
        sec.set_value(b"wrong")
        with pytest.raises(HvmonError, match="(?i)invalid password|no keyslot|luks|failed"):
            dom.create()
        assert not dom.is_active()
