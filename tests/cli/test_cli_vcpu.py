"""``vcpuinfo`` and ``vcpupin`` on the test driver, and Domain.vcpu_info."""

from __future__ import annotations

import json

import pytest

from hvmon.core.api import Connection
from hvmon.core.errors import InvalidArgument, OperationInvalid

PINNED = """\
<domain type='test'>
  <name>pinned</name>
  <memory unit='MiB'>256</memory>
  <vcpu>3</vcpu>
  <cputune>
    <vcpupin vcpu='0' cpuset='2-3'/>
    <vcpupin vcpu='2' cpuset='0,^1,5'/>
  </cputune>
  <os><type>hvm</type></os>
</domain>
"""


def test_vcpuinfo_prints_virshs_blocks(cli) -> None:
    result = cli("vcpuinfo", "test")
    assert result.code == 0
    blocks = [b.splitlines() for b in result.out.strip().split("\n\n")]
    assert [b[0] for b in blocks] == ["VCPU:           0", "VCPU:           1"]
    for block in blocks:
        assert [line[:16] for line in block] == [
            "VCPU:           ", "CPU:            ", "State:          ",
            "CPU time:       ", "CPU Affinity:   "]
        assert block[2] == "State:          running"
        assert block[3].endswith("s") and float(block[3][16:-1]) > 0
        assert block[4] == "CPU Affinity:   " + "y" * 16  # the test host has 16 CPUs


def test_vcpupin_shows_each_vcpus_affinity_from_its_pinning(cli, conn: Connection) -> None:
    conn.define_domain_xml(PINNED).create()
    result = cli("vcpupin", "pinned")
    assert result.code == 0
    assert result.out.splitlines()[:5] == [
        " VCPU   CPU Affinity",
        "----------------------",
        " 0      2-3",
        " 1      0-15",
        " 2      0,5",
    ]
    one = json.loads(cli("--json", "vcpupin", "pinned", "--vcpu", "2").out)
    assert one == {"vcpus": [{"vcpu": 2, "affinity": "0,5"}]}
    info = json.loads(cli("--json", "vcpuinfo", "pinned").out)["vcpus"]
    assert info[0]["affinity"] == "2-3" and info[0]["cpu"] in (2, 3)
    assert info[2]["cpu"] in (0, 5)
    assert cli("vcpuinfo", "pinned").out.count("CPU Affinity:   --yy------------") == 1


def test_vcpu_info_api_and_its_errors(conn: Connection, cli) -> None:
    dom = conn.define_domain_xml(PINNED)
    with pytest.raises(OperationInvalid, match="not running"):
        dom.vcpu_info()
    result = cli("vcpuinfo", "pinned")
    assert result.code == 1 and result.err.count("\n") == 1 and "not running" in result.err
    dom.create()
    vcpus = dom.vcpu_info()
    assert [(v.number, v.affinity) for v in vcpus][0] == (0, (2, 3))
    bad = PINNED.replace("0,^1,5", "99").replace("pinned", "badpin")
    bad_dom = conn.define_domain_xml(bad)
    bad_dom.create()
    with pytest.raises(InvalidArgument, match="CPU 99 does not exist"):
        bad_dom.vcpu_info()


def test_vcpupin_pins_live_config_or_current_as_virsh(cli, conn: Connection) -> None:
    assert cli("vcpupin", "test", "1", "3-4").code == 0  # running: --current is live
    assert cli("vcpupin", "test", "--vcpu", "0", "--cpulist", "2,^3,5", "--config").code == 0
    live = cli("vcpupin", "test").out.splitlines()[2:4]
    assert live == [" 0      0-15", " 1      3-4"]
    config = cli("vcpupin", "test", "--config").out.splitlines()[2:4]
    assert config == [" 0      2,5", " 1      0-15"]
    dom = conn.lookup_domain_by_name("test")
    assert '<vcpupin vcpu="1" cpuset="3-4"/>' in dom.xml_desc()
    assert '<vcpupin vcpu="0" cpuset="2,^3,5"/>' in dom.xml_desc(inactive=True)
    assert dom.vcpu_info()[1].affinity == (3, 4)
    dom.destroy()  # inactive: --current is the definition, --live is refused
    assert cli("vcpupin", "test", "1", "7").code == 0
    assert '<vcpupin vcpu="1" cpuset="7"/>' in dom.xml_desc(inactive=True)
    refused = cli("vcpupin", "test", "1", "6", "--live")
    assert refused.code == 1 and "not running" in refused.err and refused.err.count("\n") == 1
    assert cli("vcpupin", "test").out.splitlines()[2:4] == [" 0      2,5", " 1      7"]


def test_vcpupin_errors_are_one_line_and_change_nothing(cli, conn: Connection) -> None:
    dom = conn.lookup_domain_by_name("test")
    before = dom.xml_desc(), dom.xml_desc(inactive=True)
    for argv, wanted in ((("test", "0", "99"), "CPU 99 does not exist"),
                         (("test", "5", "1"), "no vCPU 5"),
                         (("test", "0", "1-x"), "bad cpuset"),
                         (("test", "--cpulist", "1"), "needs a vCPU")):
        result = cli("vcpupin", *argv)
        assert result.code == 1 and wanted in result.err and result.err.count("\n") == 1
    refused = cli("-r", "vcpupin", "test", "0", "1")  # read-only: the gate refuses
    assert refused.code == 1 and "read-only" in refused.err
    assert (dom.xml_desc(), dom.xml_desc(inactive=True)) == before
