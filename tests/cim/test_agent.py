"""The agent in an in-process daemon: read-only by default, control when configured,
indications to pywbem's WBEMListener, config validation."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pywbem
from loopthread import DaemonThread, LoopThread

from hvmon.plugins.cim.config import OPTIONS, validate_options

from .daemon_support import cim_config, free_port

CS_PATH = pywbem.CIMInstanceName("KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem",
                                                        "Name": "test"}, namespace="root/virt")


@pytest.fixture
def daemons(loop_thread: LoopThread, tmp_path: Path) -> Iterator[Any]:
    started: list[DaemonThread] = []

    def start(data: dict[str, Any]) -> DaemonThread:
        daemon = DaemonThread(loop_thread, tmp_path, data, "cim")
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()


@pytest.fixture
def listener() -> Iterator[tuple[pywbem.WBEMListener, queue.Queue[Any]]]:
    received: queue.Queue[Any] = queue.Queue()
    wbem_listener = pywbem.WBEMListener("127.0.0.1", http_port=free_port())
    wbem_listener.add_callback(lambda indication, host: received.put(indication))
    wbem_listener.start()
    try:
        yield wbem_listener, received
    finally:
        wbem_listener.stop()


def subscribe(conn: pywbem.WBEMConnection, port: int, query: str) -> None:
    filt = conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationFilter", {
        "Name": "hvmon-test", "Query": query, "QueryLanguage": "WQL",
        "SourceNamespaces": ["root/virt"]}))
    dest = conn.CreateInstance(pywbem.CIMInstance("CIM_ListenerDestinationCIMXML", {
        "Name": "hvmon-test", "Destination": f"http://127.0.0.1:{port}"}))
    conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationSubscription", {
        "Filter": filt, "Handler": dest}))


def test_read_only_by_default(daemons: Any) -> None:
    port = free_port()
    daemons(cim_config(port, control=False))
    conn = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/virt")
    assert conn.GetInstance(CS_PATH)["EnabledState"] == 2
    with pytest.raises(pywbem.CIMError) as excinfo:
        conn.InvokeMethod("RequestStateChange", CS_PATH, RequestedState=pywbem.Uint16(3))
    assert excinfo.value.status_code == 2


def test_control_needs_the_daemon_to_allow_it(daemons: Any) -> None:
    port = free_port()
    daemons(cim_config(port, control=True, allow_control=False))
    conn = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/virt")
    with pytest.raises(pywbem.CIMError) as excinfo:
        conn.InvokeMethod("RequestStateChange", CS_PATH, RequestedState=pywbem.Uint16(9))
    assert excinfo.value.status_code == 2


def test_listener_receives_an_indication_when_a_domain_starts(
        daemons: Any, listener: tuple[pywbem.WBEMListener, queue.Queue[Any]]) -> None:
    wbem_listener, received = listener
    port = free_port()
    daemons(cim_config(port, control=True))
    conn = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/interop")
    server = pywbem.WBEMServer(conn)  # finds root/interop and the CIM_ObjectManager
    assert server.interop_ns == "root/interop" and server.brand == "hvmon"
    manager = pywbem.WBEMSubscriptionManager("hvmon-test")
    server_id = manager.add_server(server)
    dest = manager.add_destination(server_id, f"http://127.0.0.1:{wbem_listener.http_port}",
                                   destination_id="listener")
    filt = manager.add_filter(server_id, "root/virt", "SELECT * FROM CIM_InstModification "
                              "WHERE SourceInstance ISA KVM_ComputerSystem", filter_id="states")
    manager.add_subscriptions(server_id, filt.path, [dest.path])
    assert len(conn.EnumerateInstances("CIM_IndicationSubscription")) == 1
    virt = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/virt")
    virt.InvokeMethod("RequestStateChange", CS_PATH, RequestedState=pywbem.Uint16(3))
    stopped = received.get(timeout=15)
    virt.InvokeMethod("RequestStateChange", CS_PATH, RequestedState=pywbem.Uint16(2))
    started = received.get(timeout=15)
    for indication in (stopped, started):
        assert indication.classname == "KVM_ComputerSystemModifiedIndication"
    source = started["SourceInstance"]
    assert isinstance(source, pywbem.CIMInstance)
    assert source["Name"] == "test" and source["EnabledState"] == 2
    assert started["PreviousInstance"]["EnabledState"] == 3
    assert stopped["SourceInstance"]["EnabledState"] == 3
    manager.remove_server(server_id)  # removes what it owns
    assert conn.EnumerateInstanceNames("CIM_IndicationSubscription") == []
    assert conn.EnumerateInstanceNames("CIM_IndicationFilter") == []


def test_created_indication_and_subscription_errors(
        daemons: Any, listener: tuple[pywbem.WBEMListener, queue.Queue[Any]]) -> None:
    wbem_listener, received = listener
    port = free_port()
    daemons(cim_config(port, control=True))
    conn = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/interop")
    bad = [("SELECT Name FROM KVM_ComputerSystemCreatedIndication", "WQL", 15),
           ("SELECT * FROM KVM_ComputerSystem", "WQL", 15),
           ("SELECT * FROM KVM_ComputerSystemCreatedIndication", "SQL", 14)]
    for query, language, code in bad:
        with pytest.raises(pywbem.CIMError) as excinfo:
            conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationFilter", {
                "Name": "bad", "Query": query, "QueryLanguage": language}))
        assert excinfo.value.status_code == code
    with pytest.raises(pywbem.CIMError) as excinfo:
        conn.CreateInstance(pywbem.CIMInstance("CIM_ListenerDestinationCIMXML", {
            "Name": "bad", "Destination": "ftp://127.0.0.1/"}))
    assert excinfo.value.status_code == 4
    subscribe(conn, wbem_listener.http_port, "SELECT * FROM KVM_ComputerSystemCreatedIndication")
    with pytest.raises(pywbem.CIMError) as excinfo:
        subscribe(conn, wbem_listener.http_port, "SELECT * FROM CIM_InstCreation")
    assert excinfo.value.status_code == 11
    (filt,) = conn.EnumerateInstanceNames("CIM_IndicationFilter")
    with pytest.raises(pywbem.CIMError) as excinfo:  # in use by the subscription
        conn.DeleteInstance(filt)
    assert excinfo.value.status_code == 1
    virt = pywbem.WBEMConnection(f"http://127.0.0.1:{port}", default_namespace="root/virt")
    (vsms,) = virt.EnumerateInstanceNames("KVM_VirtualSystemManagementService")
    virt.InvokeMethod("DefineSystem", vsms, SystemSettings=pywbem.CIMInstance(
        "KVM_VirtualSystemSettingData", {"VirtualSystemIdentifier": "fresh"}))
    created = received.get(timeout=15)
    assert created.classname == "KVM_ComputerSystemCreatedIndication"
    assert created["SourceInstance"]["Name"] == "fresh"
    gone = conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationFilter", {
        "Name": "deleted", "Query": "SELECT * FROM CIM_InstDeletion", "QueryLanguage": "WQL"}))
    (dest,) = conn.EnumerateInstanceNames("CIM_ListenerDestinationCIMXML")
    conn.CreateInstance(pywbem.CIMInstance("CIM_IndicationSubscription", {
        "Filter": gone, "Handler": dest}))
    virt.InvokeMethod("DestroySystem", vsms, AffectedSystem=pywbem.CIMInstanceName(
        "KVM_ComputerSystem", {"CreationClassName": "KVM_ComputerSystem", "Name": "fresh"}))
    deleted = received.get(timeout=15)
    assert deleted.classname == "KVM_ComputerSystemDeletedIndication"
    assert deleted["SourceInstance"]["Name"] == "fresh"
    for sub in conn.EnumerateInstanceNames("CIM_IndicationSubscription"):
        conn.DeleteInstance(sub)
    conn.DeleteInstance(filt)
    conn.DeleteInstance(gone)
    assert conn.EnumerateInstanceNames("CIM_IndicationFilter") == []
    assert received.empty()


def test_https_from_the_daemon_config(daemons: Any, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_protocol import _self_signed

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = _self_signed(tmp_path)
    port, tls_port = free_port(), free_port()
    daemons(cim_config(port, control=False, tls_cert_file=cert, tls_key_file=key,
                       https_listen=[f"127.0.0.1:{tls_port}"]))
    conn = pywbem.WBEMConnection(f"https://127.0.0.1:{tls_port}", default_namespace="root/virt",
                                 ca_certs=cert)
    assert conn.GetInstance(CS_PATH)["Name"] == "test"


def test_defaults() -> None:
    from hvmon.plugins.cim.config import DEFAULT_LISTEN

    assert DEFAULT_LISTEN == ("127.0.0.1:5988",)
    assert OPTIONS["https_listen"] == ["127.0.0.1:5989"]
    assert OPTIONS["class_prefix"] == "KVM_"


def _options(**changes: Any) -> dict[str, Any]:
    options = dict(OPTIONS)
    options.update(changes)
    return options


def test_validate_options() -> None:
    assert validate_options(_options()) == []
    problems = validate_options(_options(
        class_prefix="KVM", users={"admin": "plaintext"}, tls_cert_file="/nonexistent.pem",
        https_listen=["nowhere"], timeout=0.0, max_request_bytes=0))
    text = "\n".join(problems)
    for key in ("class_prefix", "users.admin", "tls_cert_file", "https_listen", "timeout",
                "max_request_bytes"):
        assert key in text
    assert "plaintext" not in text
