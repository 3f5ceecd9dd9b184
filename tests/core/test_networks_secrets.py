"""Networks (with simulated DHCP leases) and secrets on the test driver."""

from __future__ import annotations

import pytest

import hvmon

NET = """<network><name>lab</name><forward mode='nat'/>
<ip address='10.5.0.1' netmask='255.255.255.0'><dhcp><range start='10.5.0.100' end='10.5.0.101'/>
</dhcp></ip></network>"""


@pytest.fixture()
def conn():
    with hvmon.open("test:///default") as c:
        yield c


def test_network_lifecycle(conn):
    net = conn.define_network_xml(NET)
    assert not net.is_active() and net.is_persistent()
    assert "<uuid>" in net.xml_desc() and "virbr" in net.xml_desc()
    with pytest.raises(hvmon.OperationInvalid):
        net.dhcp_leases()
    net.create()
    net.set_autostart(True)
    assert net.get_autostart()
    with pytest.raises(hvmon.OperationInvalid, match="already active"):
        net.start()
    net.undefine()
    assert net.is_active() and not net.is_persistent()
    net.destroy()
    with pytest.raises(hvmon.NoSuchNetwork):
        conn.lookup_network_by_name("lab")


def test_leases_follow_running_domains(conn):
    net = conn.create_network_xml(NET)
    for name in ("g1", "g2", "g3"):
        conn.create_domain_xml(
            f"<domain type='test'><name>{name}</name><memory>65536</memory>"
            "<os><type>hvm</type></os><devices><interface type='network'>"
            "<source network='lab'/></interface></devices></domain>")
    leases = net.dhcp_leases()
    assert [(lease.hostname, lease.ipaddr) for lease in leases] == [
        ("g1", "10.5.0.100"), ("g2", "10.5.0.101")]  # range holds two
    assert all(lease.mac.startswith("52:54:00:") and lease.prefix == 24 for lease in leases)
    assert net.dhcp_leases(mac=leases[1].mac) == [leases[1]]
    conn.lookup_domain_by_name("g1").destroy()
    assert [lease.hostname for lease in net.dhcp_leases()] == ["g2", "g3"]


def test_secret_value_never_in_xml(conn):
    secret = conn.define_secret_xml(
        "<secret ephemeral='no' private='no'><description>ceph key</description>"
        "<usage type='ceph'><name>client.admin</name></usage></secret>")
    secret.set_value(b"AQBs3cr3t==")
    assert b"AQBs3cr3t" not in secret.xml_desc().encode()
    assert secret.get_value() == b"AQBs3cr3t=="
    assert conn.lookup_secret_by_usage("ceph", "client.admin").uuid == secret.uuid
    for dom in conn.list_all_domains():
        assert "AQBs3cr3t" not in dom.xml_desc(secure=True)
    with pytest.raises(hvmon.AlreadyExists):
        conn.define_secret_xml("<secret><usage type='ceph'><name>client.admin</name></usage>"
                               "</secret>")
    ro = hvmon.Connection(conn.driver, hvmon.core.access.AccessGate(readonly=True))
    with pytest.raises(hvmon.OperationDenied):
        ro.lookup_secret_by_uuid(secret.uuid).get_value()
    secret.undefine()
    with pytest.raises(hvmon.NoSuchSecret):
        conn.lookup_secret_by_uuid(secret.uuid)


def test_private_secret_value_cannot_be_read(conn):
    secret = conn.define_secret_xml("<secret private='yes'><usage type='volume'>"
                                    "<volume>/v</volume></usage></secret>")
    secret.set_value("x")
    with pytest.raises(hvmon.OperationInvalid, match="private"):
        secret.get_value()


def test_compat_secrets_define(compat_dir):
    paths = sorted((compat_dir / "libvirt-xml" / "secret").glob("*.xml"))
    assert len(paths) == 6
    for path in paths:
        with hvmon.open("test:///default") as conn:
            secret = conn.define_secret_xml(path.read_text())
            assert secret.uuid in path.read_text()
            found = conn.lookup_secret_by_usage(secret.usage_type, secret.usage_id)
            assert found == secret and found.uuid == secret.uuid


def test_same_uuid_with_other_usage_is_refused(conn):
    uuid = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f"
    conn.define_secret_xml(f"<secret><uuid>{uuid}</uuid><usage type='ceph'><name>a</name>"
                           "</usage></secret>")
    with pytest.raises(hvmon.AlreadyExists, match="already defined for use with a"):
        conn.define_secret_xml(f"<secret><uuid>{uuid}</uuid><usage type='ceph'><name>b</name>"
                               "</usage></secret>")
