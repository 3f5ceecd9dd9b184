"""Domain lifecycle on the test driver: libvirt's states, reasons and rules."""

from __future__ import annotations

import pytest

import hvmon
from hvmon.core.types import DomainState, PausedReason, RunningReason, ShutoffReason

TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
NEW_XML = """<domain type='test'>
  <name>web1</name>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/img/web1.qcow2'/><target bus='virtio'/></disk>
    <interface type='network'><source network='default'/></interface>
  </devices>
</domain>"""


@pytest.fixture()
def conn():
    with hvmon.open("test:///default") as c:
        yield c


def test_default_objects_match_libvirt_test_driver(conn):
    dom = conn.lookup_domain_by_name("test")
    assert dom.uuid == TEST_UUID
    assert dom.get_id() == 1
    info = dom.info()
    assert (info.state, info.max_memory, info.memory, info.nr_virt_cpu) == (
        DomainState.RUNNING, 8 * 1024 * 1024, 2 * 1024 * 1024, 2)
    assert dom.state() == (DomainState.RUNNING, RunningReason.BOOTED)
    assert dom.is_persistent() and dom.is_active()
    assert conn.lookup_domain_by_id(1) == dom
    assert conn.lookup_domain_by_uuid(TEST_UUID.upper()) == dom
    node = conn.node_info()
    assert (node.model, node.memory, node.cpus, node.mhz) == ("i686", 3 * 1024 * 1024, 16, 1400)
    assert (node.nodes, node.sockets, node.cores, node.threads) == (2, 2, 2, 2)
    net = conn.lookup_network_by_name("default")
    assert net.is_active() and net.is_persistent()
    assert "virbr0" in net.xml_desc()
    pool = conn.lookup_pool_by_name("default-pool")
    info = pool.info()
    assert info.capacity == 100 * 1024**3 and info.allocation == 0
    assert pool.list_volumes() == []


def test_full_lifecycle_of_a_defined_domain(conn):
    dom = conn.define_domain_xml(NEW_XML)
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.UNKNOWN)
    assert not dom.is_active() and dom.is_persistent() and dom.get_id() == -1
    dom.create()
    assert dom.state() == (DomainState.RUNNING, RunningReason.BOOTED)
    assert dom.get_id() > 1
    dom.suspend()
    assert dom.state() == (DomainState.PAUSED, PausedReason.USER)
    dom.resume()
    assert dom.state() == (DomainState.RUNNING, RunningReason.UNPAUSED)
    dom.reboot()
    dom.shutdown()
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.SHUTDOWN)
    dom.start()
    dom.destroy()
    assert dom.state() == (DomainState.SHUTOFF, ShutoffReason.DESTROYED)
    dom.undefine()
    with pytest.raises(hvmon.NoSuchDomain):
        conn.lookup_domain_by_name("web1")


@pytest.mark.parametrize(("setup", "action", "message"), [
    ([], "create", "already running"),
    (["destroy"], "suspend", "not running"),
    (["destroy"], "destroy", "not running"),
    ([], "resume", "not paused"),
    (["suspend"], "suspend", "not running"),
    (["destroy"], "shutdown", "not running"),
])
def test_invalid_transitions_are_refused_without_change(conn, setup, action, message):
    dom = conn.lookup_domain_by_name("test")
    for step in setup:
        getattr(dom, step)()
    before = dom.state()
    with pytest.raises(hvmon.OperationInvalid, match=message):
        getattr(dom, action)()
    assert dom.state() == before


def test_transient_domain_disappears_when_stopped(conn):
    dom = conn.create_domain_xml(NEW_XML)
    assert dom.is_active() and not dom.is_persistent()
    with pytest.raises(hvmon.OperationInvalid, match="transient"):
        dom.undefine()
    dom.destroy()
    assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_undefine_running_domain_makes_it_transient(conn):
    dom = conn.lookup_domain_by_name("test")
    dom.undefine()
    assert dom.is_active() and not dom.is_persistent()
    dom.destroy()
    assert conn.list_all_domains() == []


def test_list_filters(conn):
    conn.define_domain_xml(NEW_XML)
    conn.create_domain_xml(NEW_XML.replace("web1", "tmp1"))
    names = lambda **kw: sorted(d.name for d in conn.list_all_domains(**kw))  # noqa: E731
    assert names() == ["test", "tmp1", "web1"]
    assert names(active=True) == ["test", "tmp1"]
    assert names(active=False) == ["web1"]
    assert names(persistent=False) == ["tmp1"]
    assert names(persistent=True) == ["test", "web1"]


def test_define_fills_defaults_and_keeps_user_values(conn):
    dom = conn.define_domain_xml(NEW_XML)
    xml = dom.xml_desc()
    assert "<uuid>" in xml
    assert "52:54:00:" in xml
    assert "dev=\"vda\"" in xml
    assert dom.info().max_memory == 512 * 1024


def test_name_and_uuid_clashes_are_refused(conn):
    other_uuid = "<name>test</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
    with pytest.raises(hvmon.AlreadyExists):
        conn.define_domain_xml(NEW_XML.replace("<name>web1</name>", other_uuid))
    clash = NEW_XML.replace("<name>web1</name>",
                            f"<name>other</name><uuid>{TEST_UUID}</uuid>")
    with pytest.raises(hvmon.AlreadyExists):
        conn.define_domain_xml(clash)
    assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_redefine_by_name_without_uuid_keeps_identity(conn):
    conn.define_domain_xml(NEW_XML.replace("web1", "test"))
    dom = conn.lookup_domain_by_name("test")
    assert dom.uuid == TEST_UUID
    assert "512" in dom.xml_desc(inactive=True)
    assert dom.info().max_memory == 8 * 1024 * 1024  # running definition unchanged


def test_redefine_updates_config_not_live(conn):
    dom = conn.lookup_domain_by_name("test")
    xml = dom.xml_desc(inactive=True).replace("<vcpu placement=\"static\">2</vcpu>",
                                              "<vcpu placement=\"static\">4</vcpu>")
    conn.define_domain_xml(xml)
    assert dom.info().nr_virt_cpu == 2
    assert ">4</vcpu>" in dom.xml_desc(inactive=True)
    dom.destroy()
    dom.start()
    assert dom.info().nr_virt_cpu == 4


def test_autostart_memory_vcpus(conn):
    dom = conn.lookup_domain_by_name("test")
    dom.set_autostart(True)
    assert dom.get_autostart()
    dom.set_memory(1024 * 1024)
    assert dom.info().memory == 1024 * 1024
    with pytest.raises(hvmon.InvalidArgument):
        dom.set_memory(64 * 1024 * 1024)
    dom.set_vcpus(1)
    assert dom.info().nr_virt_cpu == 1
    with pytest.raises(hvmon.InvalidArgument):
        dom.set_vcpus(3)
    assert dom.info().nr_virt_cpu == 1


def test_attach_and_detach_device(conn):
    dom = conn.lookup_domain_by_name("test")
    dom.attach_device("<disk type='file' device='disk'><source file='/img/extra.raw'/>"
                      "<target dev='vdb' bus='virtio'/></disk>")
    assert "vdb" in dom.xml_desc()
    stats = conn.get_all_domain_stats(groups=["block"])[0].stats
    assert stats["block.count"] == 2 and stats["block.1.name"] == "vdb"
    with pytest.raises(hvmon.OperationFailed, match="already exists"):
        dom.attach_device("<disk type='file'><target dev='vdb'/></disk>")
    dom.detach_device("<disk type='file' device='disk'><target dev='vdb'/></disk>")
    assert "vdb" not in dom.xml_desc()
    with pytest.raises(hvmon.InvalidXML):
        dom.attach_device("<frobnicator/>")
    with pytest.raises(hvmon.OperationFailed, match="not found"):
        dom.detach_device("<interface type='network'>"
                          "<mac address='52:54:00:00:00:01'/></interface>")


def test_secure_xml_hides_passwords(conn):
    xml = NEW_XML.replace("</devices>",
                          "<graphics type='vnc' port='-1' passwd='s3cret'/></devices>")
    dom = conn.define_domain_xml(xml)
    assert "s3cret" not in dom.xml_desc()
    assert "s3cret" in dom.xml_desc(secure=True)
    ro = hvmon.Connection(conn.driver, hvmon.core.access.AccessGate(readonly=True))
    assert "s3cret" not in ro.lookup_domain_by_name("web1").xml_desc()


def test_unknown_lookups_give_typed_one_line_errors(conn):
    with pytest.raises(hvmon.NoSuchDomain) as exc:
        conn.lookup_domain_by_name("nope")
    assert "\n" not in str(exc.value) and exc.value.code == 42
    with pytest.raises(hvmon.NoSuchDomain):
        conn.lookup_domain_by_id(99)
    with pytest.raises(hvmon.InvalidArgument):
        conn.lookup_domain_by_uuid("not-a-uuid")
    with pytest.raises(hvmon.NoSuchPool):
        conn.lookup_pool_by_name("nope")
    with pytest.raises(hvmon.NoSuchNetwork):
        conn.lookup_network_by_name("nope")


def test_malformed_domain_xml_changes_nothing(conn):
    for bad in ("<domain>", "<domain type='test'><memory>1</memory></domain>", "<pool/>", ""):
        with pytest.raises(hvmon.InvalidXML) as exc:
            conn.define_domain_xml(bad)
        assert "\n" not in str(exc.value)
    assert [d.name for d in conn.list_all_domains()] == ["test"]
