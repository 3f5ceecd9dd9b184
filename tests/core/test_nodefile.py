"""``test:///abs/path.xml`` node files, as libvirt's test driver reads them."""

from __future__ import annotations

import pytest

import hvmon
from hvmon.core.types import DomainState

DOM = """<domain type='test'><name>{name}</name>{extra}<memory>131072</memory><vcpu>1</vcpu>
<os><type>hvm</type></os></domain>"""


def write_node(tmp_path, body, name="node.xml"):
    path = tmp_path / name
    path.write_text(f"<node>{body}</node>")
    return path


def test_cpu_memory_inline_and_file_children(tmp_path):
    (tmp_path / "dom2.xml").write_text(DOM.format(name="fromfile", extra=""))
    (tmp_path / "net.xml").write_text(
        "<network><name>lab</name><bridge name='br9'/>"
        "<ip address='10.1.0.1' prefix='24'><dhcp><range start='10.1.0.10' end='10.1.0.20'/>"
        "</dhcp></ip></network>")
    (tmp_path / "vol.xml").write_text(
        "<volume><name>disk1</name><capacity unit='G'>4</capacity></volume>")
    path = write_node(tmp_path, """
      <cpu><mhz>6000</mhz><model>i986</model><active>50</active><nodes>4</nodes>
        <sockets>4</sockets><cores>4</cores><threads>2</threads></cpu>
      <memory>8192000</memory>
      <domain type='test'><name>inline</name><memory>65536</memory>
        <os><type>hvm</type></os></domain>
      <domain file='dom2.xml'/>
      <network file='net.xml'/>
      <pool type='dir'><name>p</name><target><path>/p</path></target>
        <volume file='vol.xml'/></pool>
    """)
    with hvmon.open(f"test://{path}") as conn:
        node = conn.node_info()
        assert (node.model, node.mhz, node.cpus, node.memory, node.nodes) == (
            "i986", 6000, 50, 8192000, 4)
        assert sorted(d.name for d in conn.list_all_domains(active=True)) == [
            "fromfile", "inline"]
        ids = sorted(d.get_id() for d in conn.list_all_domains())
        assert ids == [1, 2]
        assert conn.lookup_network_by_name("lab").is_active()
        pool = conn.lookup_pool_by_name("p")
        (vol,) = pool.list_volumes()
        assert vol.name == "disk1" and vol.path == "/p/disk1"
        assert vol.info().capacity == 4 * 1024**3
        assert pool.info().allocation == 4 * 1024**3


def test_libvirt_test_metadata_runstate_and_transient(tmp_path):
    ns = "xmlns:test='http://libvirt.org/schemas/domain/test/1.0'"
    path = write_node(tmp_path, DOM.format(
        name="off", extra=f"<metadata><test:runstate {ns}>5</test:runstate></metadata>")
        + DOM.format(name="paused",
                     extra=f"<metadata><test:runstate {ns}>3</test:runstate></metadata>")
        + DOM.format(name="tr", extra=f"<metadata><test:transient {ns}/></metadata>"))
    with hvmon.open(f"test://{path}") as conn:
        assert conn.lookup_domain_by_name("off").state()[0] == DomainState.SHUTOFF
        assert conn.lookup_domain_by_name("paused").state()[0] == DomainState.PAUSED
        tr = conn.lookup_domain_by_name("tr")
        assert tr.is_active() and not tr.is_persistent()


def test_hvmon_controls_in_node_file(tmp_path):
    ns = "xmlns:hvmon='urn:hvmon:test:1'"
    path = write_node(tmp_path, f"""
      <hvmon:controls {ns} seed='9' clock='manual'>
        <hvmon:stall domain='slow' seconds='30'/>
        <hvmon:fail domain='bad' message='monitor gone'/>
        <hvmon:job domain='ok' operation='migration' total='1000000' rate='100000'/>
        <hvmon:lease network='n' mac='52:54:00:aa:bb:cc' ip='10.2.0.5' hostname='pxe'/>
      </hvmon:controls>
      <network><name>n</name><ip address='10.2.0.1' prefix='24'/></network>
    """ + "".join(DOM.format(name=n, extra="") for n in ("ok", "slow", "bad")))
    with hvmon.open(f"test://{path}") as conn:
        results = {r.domain.name: r for r in conn.get_all_domain_stats(deadline=0.3)}
        assert results["ok"].ok
        assert isinstance(results["slow"].error, hvmon.OperationTimeout)
        assert "monitor gone" in str(results["bad"].error)
        ok = conn.lookup_domain_by_name("ok")
        job = ok.job_info()
        assert job.type == 2 and job.data_total == 1000000 and job.data_processed == 0
        conn.driver.state.clock.advance(4)
        job = ok.job_info()
        assert job.data_processed == 400000 and job.data_remaining == 600000
        assert job.time_elapsed_ms == 4000 and job.time_remaining_ms == 6000
        conn.driver.state.clock.advance(10)
        assert ok.job_info().type == 0
        (lease,) = conn.lookup_network_by_name("n").dhcp_leases()
        assert (lease.mac, lease.ipaddr, lease.hostname) == ("52:54:00:aa:bb:cc", "10.2.0.5", "pxe")


def test_domain_metadata_controls(tmp_path):
    meta = "<metadata><hvmon:stats xmlns:hvmon='urn:hvmon:test:1' fail='io error'/></metadata>"
    path = write_node(tmp_path, DOM.format(name="x", extra=meta))
    with hvmon.open(f"test://{path}") as conn:
        (rec,) = conn.get_all_domain_stats()
        assert "io error" in str(rec.error)


@pytest.mark.parametrize(("body", "message"), [
    ("<domain file='missing.xml'/>", "cannot read"),
    ("<domain type='test'><name>a</name>", "XML error"),
    (DOM.format(name="a", extra="") * 2, "already exists"),
])
def test_bad_node_files_fail_with_one_line(tmp_path, body, message):
    path = tmp_path / "bad.xml"
    path.write_text(f"<node>{body}</node>" if "file=" in body or "exists" in message
                    else f"<node>{body}")
    with pytest.raises(hvmon.HvmonError, match=message) as exc:
        hvmon.open(f"test://{path}")
    assert "\n" not in str(exc.value)


def test_relative_or_missing_node_path():
    with pytest.raises(hvmon.NoConnect, match="cannot read"):
        hvmon.open("test:///nonexistent/node.xml")
    with pytest.raises(hvmon.InvalidArgument, match="unknown test driver URI parameter"):
        hvmon.open("test:///default?bogus=1")
