"""Generated from the API registry: every mutating or secure method is refused on
a read-only connection and changes nothing; every read method changes nothing."""

from __future__ import annotations

import inspect
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
}


@pytest.fixture()
def pair():
    """A read-write and a read-only connection on one driver, with one of everything."""
    rw = hvmon.open("test:///default")
    pool = rw.lookup_pool_by_name("default-pool")
    pool.create_volume_xml("<volume><name>v1</name><capacity>4096</capacity></volume>")
    secret = rw.define_secret_xml(
        "<secret ephemeral='no' private='no'><usage type='ceph'><name>c</name></usage></secret>"
    )
    secret.set_value(b"hunter2")
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
         sorted((v.name, v.info()) for v in (p.list_volumes() if p.is_active() else [])))
        for p in conn.list_all_storage_pools()
    )
    nets = sorted((n.name, n.is_active(), n.is_persistent(), n.get_autostart(), n.xml_desc())
                  for n in conn.list_all_networks())
    secrets = sorted((s.uuid, s.xml_desc(), secret_value(s)) for s in conn.list_all_secrets())
    return doms, pools, nets, secrets


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
        "capacity": 8192,
        "value": b"new-value",
        "callback": lambda event: None,
        "callback_id": 1,
        "source": None,
        "usage_type": "ceph",
        "usage_id": "c",
        "key": "/default-pool/v1",
        "path": "/default-pool/v1",
    }
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
    if name in ("Domain.create", "Domain.start"):
        target.destroy()
    if name in ("StoragePool.build", "StoragePool.delete", "StoragePool.undefine",
                "StoragePool.create", "StoragePool.start"):
        target.destroy()
    if name in ("Network.create", "Network.start"):
        target.destroy()
    if name == "Domain.resume":
        target.suspend()
    before = fingerprint(rw)
    result = getattr(target, method)(**args_for(name, fn, rw))
    if name in UNOBSERVABLE:
        return
    if name == "Secret.get_value":
        assert result == b"hunter2"
    else:
        assert fingerprint(rw) != before


# The simulation keeps no visible trace of these: a rebooted test domain is
# running as before, a wiped or refreshed simulated volume or pool looks the
# same, and building a dir pool creates no files.
UNOBSERVABLE = {"Domain.reboot", "StorageVolume.wipe", "StoragePool.build",
                "StoragePool.refresh"}


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
    getattr(target, method)(**args_for(name, fn, ro))
    assert fingerprint(rw) == before


def test_every_public_method_is_declared():
    assert undeclared_public_methods(PUBLIC_CLASSES) == []


def test_an_undeclared_method_is_caught():
    class Sneaky:
        @api("domain:read")
        def fine(self) -> None: ...

        def set_everything(self) -> None: ...

    assert undeclared_public_methods([Sneaky]) == ["Sneaky.set_everything"]
