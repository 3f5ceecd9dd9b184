"""Generated from the API registry: every mutating or secure method is refused on
a read-only connection and changes nothing; every read method changes nothing."""

from __future__ import annotations

import inspect
import os
import tempfile
from typing import Any

import pytest

import hvmon
from hvmon.core.access import AccessGate, api, undeclared_public_methods
from hvmon.core.api import PUBLIC_CLASSES, Connection, api_registry

DOMAIN_XML = """<domain type='test'><name>ro-probe</name><memory>65536</memory>
<vcpu>1</vcpu><os><type>hvm</type></os></domain>"""
POOL_XML = """<pool type='dir'><name>ro-pool</name><target><path>/ro-pool</path></target></pool>"""
NET_XML = """<network><name>ro-net</name>
<ip address='10.9.9.1' netmask='255.255.255.0'/></network>"""
SECRET_XML = """<secret ephemeral='no' private='no'><usage type='volume'>
<volume>/ro/vol</volume></usage></secret>"""
VOL_XML = """<volume><name>ro-vol</name><capacity>1048576</capacity></volume>"""
DISK_XML = """<disk type='file' device='disk'><source file='/ro/disk.img'/>
<target dev='vdz' bus='virtio'/></disk>"""

XML_FOR = {
    "Connection.define_domain_xml": DOMAIN_XML,
    "Connection.create_domain_xml": DOMAIN_XML,
    "Connection.define_pool_xml": POOL_XML,
    "Connection.create_pool_xml": POOL_XML,
    "Connection.define_network_xml": NET_XML,
    "Connection.create_network_xml": NET_XML,
    "Connection.define_secret_xml": SECRET_XML,
    "StoragePool.create_volume_xml": VOL_XML,
    "StoragePool.clone_volume": VOL_XML,
    "Domain.attach_device": DISK_XML,
    "Domain.detach_device": """<disk type='file' device='disk'><target dev='vda'/></disk>""",
    "Connection.migrate_prepare": DOMAIN_XML,
    "Connection.compare_cpu": "<cpu><model>qemu64</model></cpu>",
    "Connection.define_nwfilter_xml": "<filter name='mine' chain='root'><rule action='drop' "
                                      "direction='in'><all/></rule></filter>",
    "Connection.create_nwfilter_binding": "<filterbinding><portdev name='vnet7'/>"
                                          "<mac address='52:54:00:00:00:07'/>"
                                          "<filterref filter='clean-traffic'/></filterbinding>",
}


def populate(rw: Connection) -> None:
    """One of everything the matrix needs on ``test:///default``: a volume, a secret with a
    value, a defined network filter and a port binding of it."""
    pool = rw.lookup_pool_by_name("default-pool")
    pool.create_volume_xml("<volume><name>v1</name><capacity>4096</capacity></volume>")
    secret = rw.define_secret_xml(
        "<secret ephemeral='no' private='no'><usage type='ceph'><name>c</name></usage></secret>"
    )
    secret.set_value(b"hunter2")
    rw.define_nwfilter_xml("<filter name='own' chain='root'><rule action='accept' "
                           "direction='out'><all/></rule></filter>")
    rw.create_nwfilter_binding("<filterbinding><portdev name='vnet0'/><mac "
                               "address='52:54:00:00:00:01'/><filterref filter='own'/>"
                               "</filterbinding>")


@pytest.fixture()
def pair():
    """A read-write and a read-only connection on one driver, with one of everything."""
    rw = hvmon.open("test:///default")
    populate(rw)
    ro = Connection(rw.driver, AccessGate(readonly=True))
    yield rw, ro
    rw.close()


def fingerprint(conn: Connection) -> Any:
    """Everything observable about the host's state, through a rw connection."""
    doms = sorted(
        (d.name, d.state(), d.get_autostart(), d.is_persistent(), d.xml_desc(secure=True))
        for d in conn.list_all_domains()
    )
    pools = sorted(
        (p.name, p.is_active(), p.is_persistent(), p.get_autostart(), p.info(), p.xml_desc(),
         sorted((v.name, v.info(), head(v)) for v in (p.list_volumes() if p.is_active() else [])))
        for p in conn.list_all_storage_pools()
    )
    nets = sorted((n.name, n.is_active(), n.is_persistent(), n.get_autostart(), n.xml_desc())
                  for n in conn.list_all_networks())
    secrets = sorted((s.uuid, s.xml_desc(), secret_value(s)) for s in conn.list_all_secrets())
    filters = sorted((f.name, f.xml_desc()) for f in conn.list_all_nwfilters())
    bindings = sorted((b.port_dev, b.xml_desc()) for b in conn.list_all_nwfilter_bindings())
    return doms, pools, nets, secrets, filters, bindings


def head(vol: hvmon.StorageVolume) -> bytes:
    """The first KiB of a volume's content (enough to see an upload)."""
    return b"".join(vol.download(0, min(vol.info().capacity, 1024)))


def secret_value(secret: hvmon.Secret) -> bytes | None:
    try:
        return secret.get_value()
    except hvmon.NoSuchSecret:
        return None


def target_for(cls_name: str, ro: Connection) -> Any:
    if cls_name == "Connection":
        return ro
    if cls_name == "Domain":
        return ro.lookup_domain_by_name("test")
    pool = ro.lookup_pool_by_name("default-pool")
    if cls_name == "StoragePool":
        return pool
    if cls_name == "StorageVolume":
        return pool.lookup_volume_by_name("v1")
    if cls_name == "Network":
        return ro.lookup_network_by_name("default")
    if cls_name == "Secret":
        return ro.list_all_secrets()[0]
    if cls_name == "NWFilter":
        return ro.lookup_nwfilter_by_name("own")
    if cls_name == "NWFilterBinding":
        return ro.lookup_nwfilter_binding_by_port_dev("vnet0")
    raise AssertionError(cls_name)


def args_for(name: str, fn: Any, ro: Connection) -> dict[str, Any]:
    """Arguments that would make the call succeed if the gate let it through."""
    values: dict[str, Any] = {
        "xml": XML_FOR.get(name, ""),
        "name": "test" if name.startswith("Connection.lookup_domain") else "default",
        "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
        "id": 1,
        "autostart": True,
        "kib": 1024,
        "count": 1,
        "vcpu": 0,
        "cpuset": "0",
        "capacity": 8192,
        "value": b"new-value",
        "data": b"uploaded",
        "callback": lambda event: None,
        "callback_id": 1,
        "source": None,
        "usage_type": "ceph",
        "usage_id": "c",
        "key": "/default-pool/v1",
        "path": "/default-pool/v1",
        "flags": {"live": True},
        "cookie": {},
        "uri": "test:incoming",
        "success": False,
        "dest": None,
        "dest_uri": "",
        "port_dev": "vnet0",
        "kind": "logical",
        "domain_capabilities": ["<domainCapabilities><cpu><mode name='custom'><model "
                                "usable='yes'>Haswell</model></mode></cpu></domainCapabilities>"],
    }
    if name == "Connection.lookup_nwfilter_by_name":
        values["name"] = "clean-traffic"
    if name == "Connection.migrate_tunnel_in":
        values["name"] = "ro-probe"
    if name == "Domain.migrate_peer_to_peer":  # an empty host to migrate to
        fd, node = tempfile.mkstemp(suffix=".xml")
        os.write(fd, b"<node/>")
        os.close(fd)
        values["dest_uri"] = f"test://{node}"
    if name == "Domain.migrate":  # a second host whose 'test' domain is not in the way
        dest = hvmon.open("test:///default")
        dest.lookup_domain_by_name("test").destroy()
        dest.lookup_domain_by_name("test").undefine()
        values["dest"] = dest
    if name == "Connection.domain_event_deregister":
        values["callback_id"] = ro.domain_event_register(lambda event: None)
    if name == "StoragePool.clone_volume":
        values["source"] = ro.lookup_pool_by_name("default-pool").lookup_volume_by_name("v1")
    if name in ("Connection.lookup_pool_by_name", "StoragePool.lookup_volume_by_name"):
        values["name"] = "default-pool" if "pool" in name else "v1"
    if name == "Connection.lookup_network_by_name":
        values["name"] = "default"
    if name == "Connection.lookup_pool_by_uuid":
        values["uuid"] = "dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566"
    if name == "Connection.lookup_network_by_uuid":
        values["uuid"] = "dd8fe884-6c02-601e-7551-cca97df1c5df"
    if name == "Connection.lookup_secret_by_uuid":
        values["uuid"] = ro.list_all_secrets()[0].uuid
    params = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name: values[p.name] for p in params if p.default is inspect.Parameter.empty}


REGISTRY = api_registry()
GUARDED = sorted(n for n, s in REGISTRY.items() if s.mutates or s.secure)
SECURE_WHEN = sorted(n for n, s in REGISTRY.items() if s.secure_flag)
READS = sorted(n for n, s in REGISTRY.items()
               if not (s.mutates or s.secure) and n != "Connection.close")


def test_registry_is_not_trivial():
    assert len(GUARDED) >= 40
    assert "Domain.destroy" in GUARDED and "Secret.get_value" in GUARDED
    assert "Domain.xml_desc" in SECURE_WHEN


@pytest.mark.parametrize("name", GUARDED)
def test_mutating_or_secure_method_is_refused_read_only(pair, name):
    rw, ro = pair
    cls_name, method = name.split(".")
    target = target_for(cls_name, ro)
    fn = getattr(type(target), method)
    before = fingerprint(rw)
    with pytest.raises(hvmon.OperationDenied, match=f"read-only connection: {name} is not allowed"):
        getattr(target, method)(**args_for(name, fn, ro))
    assert fingerprint(rw) == before


@pytest.mark.parametrize("name", GUARDED)
def test_the_same_call_succeeds_read_write(pair, name):
    """Proves the arguments above are real: without the gate the call would act."""
    rw, _ = pair
    cls_name, method = name.split(".")
    target = target_for(cls_name, rw)
    fn = getattr(type(target), method)
    if name in ("Domain.create", "Domain.start", "Domain.create_with_flags"):
        target.destroy()
    if name == "Domain.core_dump":  # the gate let it through; the simulation has no memory
        with pytest.raises(hvmon.Unsupported, match="not supported by the test driver"):
            target.core_dump("/tmp/never-written.core")
        return
    if name in ("StoragePool.build", "StoragePool.delete", "StoragePool.undefine",
                "StoragePool.create", "StoragePool.start"):
        target.destroy()
    if name in ("Network.create", "Network.start"):
        target.destroy()
    if name == "Domain.resume":
        target.suspend()
    if name == "NWFilter.undefine":  # a filter in use cannot go
        rw.lookup_nwfilter_binding_by_port_dev("vnet0").delete()
    if name == "Connection.migrate_tunnel_in":  # an incoming guest to stream into
        rw.migrate_prepare(DOMAIN_XML, {}, {"live": True, "tunnelled": True})
    before = fingerprint(rw)
    result = getattr(target, method)(**args_for(name, fn, rw))
    if name in UNOBSERVABLE:
        return
    if name == "Secret.get_value":
        assert result == b"hunter2"
    elif name == "StorageVolume.download":
        assert len(b"".join(result)) == 4096
    else:
        assert fingerprint(rw) != before


# The simulation keeps no visible trace of these: a rebooted test domain is
# running as before, a wiped or refreshed simulated volume or pool looks the
# same, and building a dir pool creates no files.
UNOBSERVABLE = {"Domain.reboot", "StorageVolume.wipe", "StoragePool.build",
                "StoragePool.refresh",
                # migration phases one by one: Begin and Perform change nothing visible,
                # Finish and Confirm of a failed migration undo nothing here
                "Domain.migrate_begin", "Domain.migrate_perform", "Domain.migrate_confirm",
                "Connection.migrate_finish", "Connection.migrate_tunnel_in"}


@pytest.mark.parametrize("name", SECURE_WHEN)
def test_secure_flag_is_refused_read_only_but_plain_read_works(pair, name):
    rw, ro = pair
    cls_name, method = name.split(".")
    target = target_for(cls_name, ro)
    flag = REGISTRY[name].secure_flag
    with pytest.raises(hvmon.OperationDenied):
        getattr(target, method)(**{flag: True})
    assert getattr(target, method)(**{flag: False})


@pytest.mark.parametrize("name", READS)
def test_read_method_works_read_only_and_changes_nothing(pair, name):
    rw, ro = pair
    cls_name, method = name.split(".")
    target = target_for(cls_name, ro)
    fn = getattr(type(target), method)
    before = fingerprint(rw)
    if name in DAEMON_ONLY:
        with pytest.raises(hvmon.HvmonError, match="not supported by the test driver"):
            getattr(target, method)(**args_for(name, fn, ro))
    else:
        getattr(target, method)(**args_for(name, fn, ro))
    assert fingerprint(rw) == before


# Only a connection to a daemon has one to describe (tests/remote covers it).
DAEMON_ONLY = {"Connection.daemon_info"}


def test_every_public_method_is_declared():
    assert undeclared_public_methods(PUBLIC_CLASSES) == []


def test_an_undeclared_method_is_caught():
    class Sneaky:
        @api("domain:read")
        def fine(self) -> None: ...

        def set_everything(self) -> None: ...

    assert undeclared_public_methods([Sneaky]) == ["Sneaky.set_everything"]
