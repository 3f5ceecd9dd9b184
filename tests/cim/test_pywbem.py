"""pywbem's WBEMConnection against the server: the model, associations, errors, methods."""

from __future__ import annotations

from pathlib import Path

import pytest
import pywbem
from lxml import etree

import hvmon
from hvmon.core.xml.domain import Domain as DomainXML

from .conftest import Running, StartCim

CS = "KVM_ComputerSystem"
TEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def cs_path(name: str = "test") -> pywbem.CIMInstanceName:
    return pywbem.CIMInstanceName(CS, {"CreationClassName": CS, "Name": name},
                                  namespace="root/virt")


def vsms(conn: pywbem.WBEMConnection) -> pywbem.CIMInstanceName:
    (path,) = conn.EnumerateInstanceNames("KVM_VirtualSystemManagementService")
    return path


def status_of(excinfo: pytest.ExceptionInfo[pywbem.CIMError]) -> int:
    return excinfo.value.status_code


def test_enumerate_and_get_computer_system(cim: Running) -> None:
    conn = cim.wbem()
    (inst,) = conn.EnumerateInstances(CS)
    assert inst["Name"] == "test" and inst["UUID"] == TEST_UUID
    assert inst["EnabledState"] == 2 and inst["RequestedState"] == 12
    assert inst.path.keybindings["CreationClassName"] == CS
    got = conn.GetInstance(cs_path(), PropertyList=["EnabledState"])
    assert list(got.properties) == ["EnabledState"]
    names = conn.EnumerateInstanceNames("CIM_ComputerSystem")
    assert {n.classname for n in names} == {CS, "KVM_HostSystem"}


def test_polymorphic_enumeration_and_deep_inheritance(cim: Running) -> None:
    conn = cim.wbem()
    rasds = conn.EnumerateInstances("CIM_ResourceAllocationSettingData")
    ids = {r["InstanceID"]: r for r in rasds}
    assert ids["test/proc"]["VirtualQuantity"] == 2
    assert ids["test/mem"]["VirtualQuantity"] == 2097152 and ids["test/mem"]["Limit"] == 8388608
    assert ids["test/vda"]["Address"] == "/guest/diskimage1"
    assert ids["test/aa:bb:cc:dd:ee:ff"]["PoolID"] == "NetworkPool/default"
    shallow = conn.EnumerateInstances("CIM_ResourceAllocationSettingData",
                                      DeepInheritance=False)
    assert all("VirtualDevice" not in i.properties for i in shallow)
    pools = {p["InstanceID"] for p in conn.EnumerateInstances("CIM_ResourcePool")}
    assert pools == {"ProcessorPool/0", "MemoryPool/0", "DiskPool/default-pool",
                     "NetworkPool/default"}
    (vssd,) = conn.EnumerateInstances("KVM_VirtualSystemSettingData")
    assert vssd["InstanceID"] == "KVM:test" and vssd["VirtualSystemType"] == "KVM"


def test_classes_are_served_with_qualifiers_and_methods(cim: Running) -> None:
    conn = cim.wbem()
    cls = conn.GetClass(CS, LocalOnly=False, IncludeQualifiers=True)
    assert cls.superclass == "CIM_ComputerSystem"
    assert cls.properties["Name"].qualifiers["Key"].value is True
    method = cls.methods["RequestStateChange"]
    assert method.return_type == "uint32"
    assert method.parameters["RequestedState"].type == "uint16"
    assert method.parameters["Job"].reference_class == "CIM_ConcreteJob"
    local = conn.GetClass(CS)  # LocalOnly defaults to true
    assert list(local.properties) == ["UUID"] and not local.methods
    names = conn.EnumerateClassNames(DeepInheritance=True)
    for wanted in ("KVM_HostSystem", "KVM_DiskPool", "KVM_ElementAllocatedFromPool",
                   "KVM_HostedService", "KVM_ComputerSystemModifiedIndication"):
        assert wanted in names
    subs = conn.EnumerateClasses(ClassName="CIM_ResourcePool", DeepInheritance=True)
    assert {c.classname for c in subs} == {"KVM_DiskPool", "KVM_NetworkPool",
                                           "KVM_ProcessorPool", "KVM_MemoryPool"}
    quals = {q.name for q in conn.EnumerateQualifiers()}
    assert {"Key", "Association", "ValueMap"} <= quals


def test_associators_across_the_model(cim: Running) -> None:
    conn = cim.wbem()
    devices = conn.AssociatorNames(cs_path(), AssocClass="KVM_SystemDevice")
    assert {d["DeviceID"] for d in devices} == {"test/0", "test/1", "test/mem", "test/vda",
                                                "test/aa:bb:cc:dd:ee:ff"}
    (vssd,) = conn.Associators(cs_path(), AssocClass="KVM_SettingsDefineState")
    assert vssd["InstanceID"] == "KVM:test"
    rasds = conn.Associators(vssd.path, AssocClass="KVM_VirtualSystemSettingDataComponent")
    assert len(rasds) == 4
    nic = next(d for d in devices if d["DeviceID"] == "test/aa:bb:cc:dd:ee:ff")
    (pool,) = conn.Associators(nic, AssocClass="KVM_ElementAllocatedFromPool")
    assert pool.classname == "KVM_NetworkPool" and pool["InstanceID"] == "NetworkPool/default"
    cpu = next(d for d in devices if d["DeviceID"] == "test/0")
    (pool,) = conn.Associators(cpu, AssocClass="KVM_ElementAllocatedFromPool")
    assert pool["InstanceID"] == "ProcessorPool/0"
    users = conn.AssociatorNames(pool.path, AssocClass="KVM_ElementAllocatedFromPool")
    assert {u["DeviceID"] for u in users} == {"test/0", "test/1"}
    (host,) = conn.Associators(cs_path(), ResultClass="KVM_HostSystem")
    services = conn.AssociatorNames(host.path, AssocClass="KVM_HostedService")
    assert {s.classname for s in services} == {"KVM_VirtualSystemManagementService",
                                               "KVM_ResourcePoolConfigurationService",
                                               "KVM_VirtualSystemMigrationService"}
    hosted = conn.AssociatorNames(host.path, AssocClass="KVM_HostedResourcePool")
    assert len(hosted) == 4
    refs = conn.ReferenceNames(cs_path(), ResultClass="KVM_SystemDevice")
    assert len(refs) == 5 and all(r.classname == "KVM_SystemDevice" for r in refs)
    full = conn.References(cs_path(), ResultClass="KVM_SettingsDefineState", Role="ManagedElement")
    assert len(full) == 1 and full[0]["SettingData"]["InstanceID"] == "KVM:test"
    assert conn.AssociatorNames(cs_path(), Role="PartComponent") == []


def test_capabilities(cim: Running) -> None:
    conn = cim.wbem()
    (caps,) = conn.Associators(cs_path(), AssocClass="KVM_ElementCapabilities")
    assert caps.classname == "KVM_EnabledLogicalElementCapabilities"
    assert list(caps["RequestedStatesSupported"]) == [2, 3, 4, 9, 10, 11]
    (mgmt,) = conn.Associators(vsms(conn), AssocClass="CIM_ElementCapabilities")
    assert list(mgmt["VirtualSystemTypesSupported"]) == ["KVM"]
    assert list(mgmt["SynchronousMethodsSupported"]) == [0, 1, 2, 3, 4, 5]
    (back,) = conn.AssociatorNames(caps.path, AssocClass="KVM_ElementCapabilities")
    assert back["Name"] == "test"


def test_registered_profiles_in_interop(cim: Running) -> None:
    conn = cim.wbem("root/interop")
    profiles = conn.EnumerateInstances("CIM_RegisteredProfile")
    names = {p["RegisteredName"] for p in profiles}
    assert {"System Virtualization", "Virtual System", "Profile Registration"} <= names
    sysvirt = next(p for p in profiles if p["RegisteredName"] == "System Virtualization")
    (host,) = conn.Associators(sysvirt.path, AssocClass="CIM_ElementConformsToProfile")
    assert host.classname == "KVM_HostSystem" and host.path.namespace == "root/virt"
    virtual = next(p for p in profiles if p["RegisteredName"] == "Virtual System")
    members = conn.AssociatorNames(virtual.path, AssocClass="CIM_ElementConformsToProfile")
    assert [m["Name"] for m in members] == ["test"]


@pytest.mark.parametrize(("call", "code"), [
    (lambda c: c.EnumerateInstances(CS, namespace="root/nothing"), 3),
    (lambda c: c.EnumerateInstances("KVM_NoSuchClass"), 5),
    (lambda c: c.GetClass("KVM_NoSuchClass"), 5),
    (lambda c: c.GetInstance(cs_path("ghost")), 6),
    (lambda c: c.AssociatorNames(cs_path(), AssocClass="KVM_Nope"), 4),
    (lambda c: c.OpenEnumerateInstances(CS), 7),
    (lambda c: c.ExecQuery("WQL", "SELECT * FROM KVM_ComputerSystem"), 7),
    (lambda c: c.ModifyInstance(pywbem.CIMInstance(CS, path=cs_path())), 7),
    (lambda c: c.InvokeMethod("NoSuchMethod", cs_path()), 17),
    (lambda c: c.InvokeMethod("RequestStateChange", cs_path(),
                              RequestedState=pywbem.Uint32(99999999)), 4),
    (lambda c: c.InvokeMethod("RequestStateChange", cs_path(), Bogus=pywbem.Uint16(2)), 4),
    (lambda c: c.InvokeMethod("MigrateVirtualSystemToHost", c.EnumerateInstanceNames(
        "KVM_VirtualSystemMigrationService")[0], ComputerSystem=cs_path(),
        DestinationHost="elsewhere"), 4),
])
def test_errors_carry_the_right_status(cim: Running, call: object, code: int) -> None:
    conn = cim.wbem()
    with pytest.raises(pywbem.CIMError) as excinfo:
        call(conn)  # type: ignore[operator]
    assert status_of(excinfo) == code, excinfo.value


def test_pull_operations_fall_back(cim: Running) -> None:
    conn = cim.wbem()
    result = conn.IterEnumerateInstances(CS)  # tries OpenEnumerateInstances first
    assert [i["Name"] for i in result] == ["test"]


@pytest.mark.parametrize(("requested", "state"), [(9, 9), (3, 3)])
def test_request_state_change(cim: Running, requested: int, state: int) -> None:
    conn = cim.wbem()
    rc, out = conn.InvokeMethod("RequestStateChange", cs_path(),
                                RequestedState=pywbem.Uint16(requested))
    assert rc == 0 and not out
    assert cim.conn.lookup_domain_by_name("test").info().state.value in (3, 5)
    inst = conn.GetInstance(cs_path())
    assert inst["EnabledState"] == state and inst["RequestedState"] == requested
    rc, _ = conn.InvokeMethod("RequestStateChange", cs_path(), RequestedState=pywbem.Uint16(2))
    assert rc == 0 and conn.GetInstance(cs_path())["EnabledState"] == 2


@pytest.mark.parametrize(("requested", "active", "state"), [(4, False, 3), (10, True, 2),
                                                          (11, True, 2)])
def test_shutdown_reboot_reset(cim: Running, requested: int, active: bool, state: int) -> None:
    conn = cim.wbem()
    rc, _ = conn.InvokeMethod("RequestStateChange", cs_path(),
                              RequestedState=pywbem.Uint16(requested))
    assert rc == 0
    assert cim.conn.lookup_domain_by_name("test").is_active() is active
    inst = conn.GetInstance(cs_path())
    assert (inst["EnabledState"], inst["RequestedState"]) == (state, requested)


def test_unsupported_requested_state(cim: Running) -> None:
    with pytest.raises(pywbem.CIMError) as excinfo:
        cim.wbem().InvokeMethod("RequestStateChange", cs_path(), RequestedState=pywbem.Uint16(6))
    assert status_of(excinfo) == 7


def test_a_domain_defined_elsewhere_can_be_controlled_at_once(cim: Running) -> None:
    conn = cim.wbem()
    conn.EnumerateInstances(CS)  # the snapshot is taken
    cim.conn.define_domain_xml("<domain type='test'><name>other</name><memory>65536</memory>"
                               "<os><type>hvm</type></os></domain>")
    rc, _ = conn.InvokeMethod("RequestStateChange", cs_path("other"),
                              RequestedState=pywbem.Uint16(2))
    assert rc == 0 and cim.conn.lookup_domain_by_name("other").is_active()


def test_request_state_change_invalid_transition_fails(cim: Running) -> None:
    conn = cim.wbem()
    with pytest.raises(pywbem.CIMError) as excinfo:
        conn.InvokeMethod("RequestStateChange", cs_path(), RequestedState=pywbem.Uint16(2))
    assert status_of(excinfo) == 1 and "already running" in str(excinfo.value)


def _settings(cls: str, **props: object) -> pywbem.CIMInstance:
    return pywbem.CIMInstance(cls, properties=props)


def test_define_system_creates_matching_domain(cim: Running) -> None:
    conn = cim.wbem()
    vssd = _settings("KVM_VirtualSystemSettingData", VirtualSystemIdentifier="web1",
                     UUID="0b2c1a64-5d0e-4a3e-9d67-1f3e0c2a9b11")
    rasds = [
        _settings("KVM_MemResourceAllocationSettingData", VirtualQuantity=pywbem.Uint64(262144),
                  Limit=pywbem.Uint64(524288)),
        _settings("KVM_ProcResourceAllocationSettingData", VirtualQuantity=pywbem.Uint64(2)),
        _settings("KVM_DiskResourceAllocationSettingData", VirtualDevice="vda",
                  Address="/var/lib/images/web1.qcow2", DriverType="qcow2"),
        _settings("KVM_NetResourceAllocationSettingData", Address="52:54:00:12:34:56",
                  PoolID="NetworkPool/default", ResourceSubType="virtio"),
    ]
    rc, out = conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=vssd,
                                ResourceSettings=rasds)
    assert rc == 0
    assert out["ResultingSystem"]["Name"] == "web1"
    dom = DomainXML.from_xml(cim.conn.lookup_domain_by_name("web1").xml_desc())
    assert dom.uuid == "0b2c1a64-5d0e-4a3e-9d67-1f3e0c2a9b11"
    assert dom.memory_kib == 524288 and dom.current_memory_kib == 262144 and dom.vcpus == 2
    (disk,) = dom.disks
    assert (disk.target_dev, disk.source_path, disk.driver_type) == (
        "vda", "/var/lib/images/web1.qcow2", "qcow2")
    (nic,) = dom.interfaces
    assert (nic.mac, nic.source.network, nic.model) == ("52:54:00:12:34:56", "default",
                                                         "virtio")
    inst = conn.GetInstance(out["ResultingSystem"])
    assert inst["EnabledState"] == 3
    # the new domain's resources are served at once
    ids = {r["InstanceID"] for r in conn.Associators(
        pywbem.CIMInstanceName("KVM_VirtualSystemSettingData", {"InstanceID": "KVM:web1"}),
        AssocClass="KVM_VirtualSystemSettingDataComponent")}
    assert ids == {"web1/proc", "web1/mem", "web1/vda", "web1/52:54:00:12:34:56"}


def test_define_system_accepts_mof_settings_and_refuses_bad_ones(cim: Running) -> None:
    conn = cim.wbem()
    mof = 'instance of KVM_VirtualSystemSettingData { VirtualSystemIdentifier = "mofvm"; };'
    mem = "instance of KVM_MemResourceAllocationSettingData { VirtualQuantity = 131072; };"
    rc, _ = conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=mof,
                              ResourceSettings=[mem])
    assert rc == 0
    assert DomainXML.from_xml(cim.conn.lookup_domain_by_name("mofvm").xml_desc()) \
        .current_memory_kib == 131072
    for bad in ("instance of {", "<INSTANCE CLASSNAME='X'><oops", "plain words"):
        with pytest.raises(pywbem.CIMError) as excinfo:
            conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=bad)
        assert status_of(excinfo) == 4
    with pytest.raises(pywbem.CIMError) as excinfo:  # same name again
        conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=mof)
    assert status_of(excinfo) == 11


def test_resource_settings_and_destroy_system(cim: Running) -> None:
    conn = cim.wbem()
    vssd_path = pywbem.CIMInstanceName("KVM_VirtualSystemSettingData",
                                       {"InstanceID": "KVM:test"}, namespace="root/virt")
    disk = _settings("KVM_DiskResourceAllocationSettingData", VirtualDevice="vdb",
                     Address="/guest/data.img")
    rc, out = conn.InvokeMethod("AddResourceSettings", vsms(conn),
                                AffectedConfiguration=vssd_path, ResourceSettings=[disk])
    assert rc == 0 and out["ResultingResourceSettings"][0]["InstanceID"] == "test/vdb"
    targets = [d.target_dev for d in DomainXML.from_xml(
        cim.conn.lookup_domain_by_name("test").xml_desc()).disks]
    assert targets == ["vda", "vdb"]
    mem = _settings("KVM_MemResourceAllocationSettingData", InstanceID="test/mem",
                    VirtualQuantity=pywbem.Uint64(1048576))
    rc, _ = conn.InvokeMethod("ModifyResourceSettings", vsms(conn), ResourceSettings=[mem])
    assert rc == 0 and cim.conn.lookup_domain_by_name("test").info().memory == 1048576
    rc, _ = conn.InvokeMethod("RemoveResourceSettings", vsms(conn), ResourceSettings=[
        pywbem.CIMInstanceName("KVM_DiskResourceAllocationSettingData",
                               {"InstanceID": "test/vdb"})])
    assert rc == 0
    vssd = _settings("KVM_VirtualSystemSettingData", InstanceID="KVM:test",
                     AutoStart=pywbem.Uint16(1))
    rc, _ = conn.InvokeMethod("ModifySystemSettings", vsms(conn), SystemSettings=vssd)
    assert rc == 0 and cim.conn.lookup_domain_by_name("test").get_autostart()
    rc, _ = conn.InvokeMethod("DestroySystem", vsms(conn), AffectedSystem=cs_path())
    assert rc == 0 and conn.EnumerateInstanceNames(CS) == []


def test_volumes_created_and_deleted_in_a_pool(cim: Running) -> None:
    conn = cim.wbem()
    (rpcs,) = conn.EnumerateInstanceNames("KVM_ResourcePoolConfigurationService")
    pool = pywbem.CIMInstanceName("KVM_DiskPool", {"InstanceID": "DiskPool/default-pool"})
    settings = _settings("KVM_StorageVolumeResourceAllocationSettingData", VolumeName="v1.img",
                         Capacity=pywbem.Uint64(1 << 20))
    rc, out = conn.InvokeMethod("CreateResourceInPool", rpcs, Settings=settings, Pool=pool)
    assert rc == 0 and out["Resource"]["InstanceID"] == "default-pool/v1.img"
    vols = conn.EnumerateInstances("KVM_StorageVolumeResourceAllocationSettingData")
    assert [(v["VolumeName"], v["Capacity"]) for v in vols] == [("v1.img", 1 << 20)]
    # a disk on that volume is allocated from the pool
    conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=_settings(
        "KVM_VirtualSystemSettingData", VirtualSystemIdentifier="onvol"), ResourceSettings=[
        _settings("KVM_DiskResourceAllocationSettingData", VirtualDevice="vda",
                  Address=vols[0]["Path"])])
    disk = pywbem.CIMInstanceName("KVM_LogicalDisk", {
        "SystemCreationClassName": CS, "SystemName": "onvol",
        "CreationClassName": "KVM_LogicalDisk", "DeviceID": "onvol/vda"})
    (found,) = conn.AssociatorNames(disk, AssocClass="KVM_ElementAllocatedFromPool")
    assert found["InstanceID"] == "DiskPool/default-pool"
    (rasd,) = conn.Associators(disk, AssocClass="KVM_SettingsDefineState")
    assert rasd["PoolID"] == "DiskPool/default-pool"
    rc, _ = conn.InvokeMethod("DeleteResourceInPool", rpcs, Resource=out["Resource"], Pool=pool)
    assert rc == 0
    assert conn.EnumerateInstances("KVM_StorageVolumeResourceAllocationSettingData") == []


def test_read_only_server_refuses_every_method(start_cim: StartCim) -> None:
    ro = start_cim(readonly=True)
    conn = ro.wbem()
    assert conn.EnumerateInstances(CS)[0]["EnabledState"] == 2  # reads work
    calls = [
        lambda: conn.InvokeMethod("RequestStateChange", cs_path(),
                                  RequestedState=pywbem.Uint16(3)),
        lambda: conn.InvokeMethod("DefineSystem", vsms(conn), SystemSettings=_settings(
            "KVM_VirtualSystemSettingData", VirtualSystemIdentifier="nope")),
        lambda: conn.InvokeMethod("DestroySystem", vsms(conn), AffectedSystem=cs_path()),
    ]
    for call in calls:
        with pytest.raises(pywbem.CIMError) as excinfo:
            call()
        assert status_of(excinfo) == 2, excinfo.value
    assert ro.conn.lookup_domain_by_name("test").is_active()


def test_class_prefix_renames_the_classes(start_cim: StartCim) -> None:
    conn = start_cim(prefix="Xen_").wbem()
    (inst,) = conn.EnumerateInstances("Xen_ComputerSystem")
    assert inst["CreationClassName"] == "Xen_ComputerSystem"
    (vssd,) = conn.EnumerateInstances("Xen_VirtualSystemSettingData")
    assert vssd["InstanceID"] == "Xen:test"
    with pytest.raises(pywbem.CIMError):
        conn.GetClass("KVM_ComputerSystem")


def test_instances_are_written_without_self_closing_tags(cim: Running) -> None:
    conn = cim.wbem()
    conn.EnumerateInstances(CS)
    body = conn.last_raw_reply
    body = body if isinstance(body, bytes) else body.encode()
    assert b"/>" not in body
    etree.fromstring(body)


def test_subscriptions_survive_a_restart(start_cim: StartCim, tmp_path: object) -> None:
    first = start_cim(state_dir=tmp_path)
    conn = first.wbem("root/interop")
    filt = conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationFilter", {
        "Name": "keep", "Query": "SELECT * FROM CIM_InstCreation", "QueryLanguage": "WQL"}))
    dest = conn.CreateInstance(pywbem.CIMInstance("CIM_ListenerDestinationCIMXML", {
        "Name": "keep", "Destination": "http://127.0.0.1:1"}))
    conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationSubscription", {
        "Filter": filt, "Handler": dest}))
    again = start_cim(state_dir=tmp_path).wbem("root/interop")
    (sub,) = again.EnumerateInstances("CIM_IndicationSubscription")
    assert sub["Filter"]["Name"] == "keep" and sub["Handler"]["Name"] == "keep"
    assert again.GetInstance(filt)["Query"] == "SELECT * FROM CIM_InstCreation"
    again.DeleteInstance(sub.path)
    assert start_cim(state_dir=tmp_path).wbem("root/interop").EnumerateInstanceNames(
        "CIM_IndicationSubscription") == []


def test_a_broken_subscriptions_file_is_ignored(start_cim: StartCim, tmp_path: object) -> None:
    from pathlib import Path

    from hvmon.plugins.cim.server import SUBSCRIPTIONS_FILE

    store = Path(str(tmp_path)) / SUBSCRIPTIONS_FILE
    store.write_text('[{"namespace": "root/interop", "classname": "CIM_Nope"}, 7, "x"')
    conn = start_cim(state_dir=tmp_path).wbem("root/interop")
    assert conn.EnumerateInstanceNames("CIM_IndicationFilter") == []
    store.write_text('[{"namespace": "root/interop", "classname": "CIM_IndicationFilter", '
                     '"path": 1, "values": {}}, {"namespace": "root/interop"}]')
    conn = start_cim(state_dir=tmp_path).wbem("root/interop")
    assert conn.EnumerateInstanceNames("CIM_IndicationFilter") == []


def test_migrate_virtual_system_to_host(cim: Running, tmp_path: Path) -> None:
    """The guest moves to the host the URI names (a test-driver host from a node file)."""
    node = tmp_path / "elsewhere.xml"
    node.write_text("<node/>")
    conn = cim.wbem()
    (service,) = conn.EnumerateInstanceNames("KVM_VirtualSystemMigrationService")
    settings = pywbem.CIMInstance("CIM_VirtualSystemMigrationSettingData",
                                  properties={"MigrationType": pywbem.Uint16(2)})
    rc, out = conn.InvokeMethod("MigrateVirtualSystemToHost", service,
                                ComputerSystem=cs_path(), DestinationHost=f"test://{node}",
                                MigrationSettingData=settings)
    assert rc == 0 and not out.get("Job")
    with pytest.raises(hvmon.NoSuchDomain):  # persistent here: undefined after success
        cim.conn.lookup_domain_by_name("test")
    bad = pywbem.CIMInstance("CIM_VirtualSystemMigrationSettingData",
                             properties={"MigrationType": pywbem.Uint16(9)})
    with pytest.raises(pywbem.CIMError) as excinfo:
        conn.InvokeMethod("MigrateVirtualSystemToHost", service, ComputerSystem=cs_path(),
                          DestinationHost=f"test://{node}", MigrationSettingData=bad)
    assert status_of(excinfo) == 7
