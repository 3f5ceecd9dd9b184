"""The core API through a daemon: the same answers and the same typed errors."""

from __future__ import annotations

import queue
import threading

import pytest

import hvmon
from hvmon.core.api import Connection, DomainEvent
from hvmon.core.events import LifecycleEvent
from hvmon.core.types import DomainState, PoolState

from .conftest import Daemon

DOMAIN_XML = """<domain type='test'><name>{name}</name><memory>65536</memory>
<vcpu>1</vcpu><os><type>hvm</type></os></domain>"""
POOL_XML = "<pool type='dir'><name>tour</name><target><path>/tour</path></target></pool>"
NET_XML = """<network><name>tour-net</name>
<ip address='10.7.7.1' netmask='255.255.255.0'/></network>"""
SECRET_XML = """<secret ephemeral='no' private='no'>
<usage type='ceph'><name>client.tour</name></usage></secret>"""


def test_domains_define_start_destroy_undefine(remote: Connection, daemon: Daemon) -> None:
    dom = remote.define_domain_xml(DOMAIN_XML.format(name="tour"))
    assert dom.name == "tour" and not dom.is_active() and dom.is_persistent()
    assert daemon.local.lookup_domain_by_name("tour").uuid == dom.uuid
    dom.create()
    assert dom.state()[0] is DomainState.RUNNING and dom.get_id() > 0
    info = dom.info()
    assert info.state is DomainState.RUNNING and info.max_memory == 65536
    assert remote.lookup_domain_by_id(dom.get_id()) == dom
    assert remote.lookup_domain_by_uuid(dom.uuid).name == "tour"
    dom.set_autostart(True)
    assert dom.get_autostart()
    assert "<name>tour</name>" in dom.xml_desc()
    assert dom.job_info().type == 0
    dom.suspend()
    assert dom.state()[0] is DomainState.PAUSED
    dom.resume()
    dom.destroy()
    assert not dom.is_active()
    dom.undefine()
    assert [d.name for d in remote.list_all_domains()] == ["test"]
    stats = remote.get_all_domain_stats(groups=["state"])
    assert stats[0].stats["state.state"] == int(DomainState.RUNNING)


def test_errors_keep_their_types_and_codes(remote: Connection) -> None:
    with pytest.raises(hvmon.NoSuchDomain) as exc:
        remote.lookup_domain_by_name("missing")
    assert exc.value.code == 42 and "missing" in str(exc.value)
    with pytest.raises(hvmon.NoSuchPool):
        remote.lookup_pool_by_name("missing")
    with pytest.raises(hvmon.NoSuchNetwork):
        remote.lookup_network_by_name("missing")
    with pytest.raises(hvmon.NoSuchSecret):
        remote.lookup_secret_by_uuid("00000000-0000-0000-0000-000000000000")
    with pytest.raises(hvmon.InvalidXML):
        remote.define_domain_xml("<domain>")
    with pytest.raises(hvmon.OperationInvalid):
        remote.lookup_domain_by_name("test").create()  # already running
    with pytest.raises(hvmon.AlreadyExists):
        remote.create_pool_xml(POOL_XML.replace("tour", "default-pool"))
    assert remote.get_hostname()  # the connection is still fine


def test_pools_and_volumes(remote: Connection) -> None:
    pool = remote.define_pool_xml(POOL_XML)
    pool.build()
    pool.create()
    assert pool.info().state is PoolState.RUNNING
    vol = pool.create_volume_xml("<volume><name>a</name><capacity>8192</capacity></volume>")
    assert vol.pool_name == "tour" and vol.info().capacity == 8192
    assert remote.lookup_volume_by_path(vol.path) == vol
    assert remote.lookup_volume_by_key(vol.key) == vol
    assert pool.lookup_volume_by_name("a") == vol
    clone = pool.clone_volume("<volume><name>b</name><capacity>8192</capacity></volume>", vol)
    assert sorted(v.name for v in pool.list_volumes()) == ["a", "b"]
    vol.upload(b"hello", offset=3)
    assert b"".join(vol.download(0, 8)) == b"\0\0\0hello"
    vol.resize(16384)
    assert vol.info().capacity == 16384
    clone.wipe()
    clone.delete()
    assert "<name>a</name>" in vol.xml_desc()
    pool.set_autostart(True)
    assert pool.get_autostart() and pool.is_persistent() and "<pool" in pool.xml_desc()
    pool.refresh()
    pool.destroy()
    pool.undefine()
    assert [p.name for p in remote.list_all_storage_pools()] == ["default-pool"]


def test_networks_and_secrets(remote: Connection, daemon: Daemon) -> None:
    net = remote.define_network_xml(NET_XML)
    net.create()
    assert net.is_active() and "10.7.7.1" in net.xml_desc()
    assert net.dhcp_leases() == []
    net.set_autostart(True)
    assert net.get_autostart()
    net.destroy()
    net.undefine()
    assert [n.name for n in remote.list_all_networks()] == ["default"]
    secret = remote.define_secret_xml(SECRET_XML)
    secret.set_value(b"\x00\xffkey")
    assert secret.get_value() == b"\x00\xffkey"
    assert remote.lookup_secret_by_usage("ceph", "client.tour") == secret
    assert daemon.local.lookup_secret_by_uuid(secret.uuid).get_value() == b"\x00\xffkey"
    secret.undefine()
    assert remote.list_all_secrets() == []


def test_host_calls(remote: Connection, daemon: Daemon) -> None:
    assert remote.node_info() == daemon.local.node_info()
    assert remote.capabilities() == daemon.local.capabilities()
    assert remote.get_free_memory() == daemon.local.get_free_memory()
    assert remote.get_version() == daemon.local.get_version() == 2


def test_vcpu_info_crosses_the_socket(remote: Connection, daemon: Daemon) -> None:
    vcpus = remote.lookup_domain_by_name("test").vcpu_info()
    assert [(v.number, v.affinity) for v in vcpus] == [
        (v.number, v.affinity) for v in daemon.local.lookup_domain_by_name("test").vcpu_info()]
    assert isinstance(vcpus[0].affinity, tuple) and vcpus[0].state == 1
    remote.lookup_domain_by_name("test").pin_vcpu(0, "1-2")
    assert daemon.local.lookup_domain_by_name("test").vcpu_info()[0].affinity == (1, 2)


def test_events_are_delivered_remotely(remote: Connection, daemon: Daemon) -> None:
    seen: queue.Queue[DomainEvent] = queue.Queue()
    callback_id = remote.domain_event_register(seen.put)
    remote.lookup_domain_by_name("test").destroy()
    event = seen.get(timeout=5)
    assert (event.domain.name, event.event) == ("test", LifecycleEvent.STOPPED)
    assert event.domain.connection is remote
    daemon.local.lookup_domain_by_name("test").create()  # another client's change
    assert seen.get(timeout=5).event is LifecycleEvent.STARTED
    remote.domain_event_deregister(callback_id)
    daemon.local.lookup_domain_by_name("test").destroy()
    with pytest.raises(queue.Empty):
        seen.get(timeout=0.2)


def test_event_callbacks_may_call_the_daemon(remote: Connection) -> None:
    states: queue.Queue[DomainState] = queue.Queue()
    remote.domain_event_register(lambda ev: states.put(ev.domain.state()[0]))
    remote.lookup_domain_by_name("test").suspend()
    assert states.get(timeout=5) is DomainState.PAUSED


def test_concurrent_calls_from_threads(remote: Connection) -> None:
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(40):
                assert remote.lookup_domain_by_name("test").info().nr_virt_cpu == 2
                assert [p.name for p in remote.list_all_storage_pools()] == ["default-pool"]
        except BaseException as exc:  # reported below
            errors.append(exc)

    def writer(n: int) -> None:
        try:
            for i in range(10):
                dom = remote.define_domain_xml(DOMAIN_XML.format(name=f"w{n}-{i}"))
                dom.undefine()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_close_ends_only_the_session(daemon: Daemon) -> None:
    first, second = daemon.open(), daemon.open()
    assert daemon.wait_for(lambda: daemon.server.client_count == 2)
    first.close()
    assert daemon.wait_for(lambda: daemon.server.client_count == 1)
    assert second.lookup_domain_by_name("test").is_active()
    with pytest.raises(hvmon.NoConnect, match="is closed"):
        first.driver.node_info()
    second.close()


def test_lost_connection_fails_every_later_call(daemon: Daemon) -> None:
    conn = daemon.open()
    try:
        daemon.stop()
        with pytest.raises(hvmon.NoConnect, match=f"connection to daemon at {daemon.rw_path}"):
            conn.node_info()
        with pytest.raises(hvmon.NoConnect):
            conn.list_all_domains()
    finally:
        conn.close()


def test_paused_start_through_the_daemon(remote: Connection, daemon: Daemon) -> None:
    dom = remote.lookup_domain_by_name("test")
    dom.destroy()
    dom.create_with_flags(paused=True)
    assert dom.state()[0] == hvmon.DomainState.PAUSED
    assert daemon.local.lookup_domain_by_name("test").state()[0] == hvmon.DomainState.PAUSED
