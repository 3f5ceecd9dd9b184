"""RemoteDriver: the Driver interface forwarded to a daemon over its socket.

Every public :class:`~hvmon.core.drivers.base.Driver` method is a procedure of
the same name; the daemon checks access with the core's own gate and answers
with the value or the typed error the local driver would have raised.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvmon.core.drivers.base import Driver, Progress, VolumeRef
from hvmon.core.drivers.remote import framing
from hvmon.core.drivers.remote.streams import DownloadSink, DownloadStream, UploadStream
from hvmon.core.drivers.remote.transport import Transport
from hvmon.core.errors import HvmonError
from hvmon.core.events import Callback, DomainEventRecord, EventBus, LifecycleEvent

if TYPE_CHECKING:
    from hvmon.core.drivers.remote.tls import TlsPump
    from hvmon.core.snapshot.model import Snapshot

log = logging.getLogger(__name__)

_STOP = object()


class RemoteEventBus(EventBus):
    """Asks the daemon for events while at least one callback is registered."""

    def __init__(self, driver: RemoteDriver) -> None:
        super().__init__()
        self._driver = driver
        self._subscribed = 0
        self._sub_lock = threading.Lock()

    def register(self, callback: Callback) -> int:
        with self._sub_lock:
            if self._subscribed == 0:
                self._driver._events(True)
            self._subscribed += 1
            return super().register(callback)

    def deregister(self, callback_id: int) -> bool:
        with self._sub_lock:
            if not super().deregister(callback_id):
                return False
            self._subscribed -= 1
            if self._subscribed == 0:
                with contextlib.suppress(HvmonError):  # a dead link sends nothing anyway
                    self._driver._events(False)
            return True


def _forward(name: str) -> Callable[..., Any]:
    """A method calling procedure ``name`` with the caller's arguments."""

    @functools.wraps(getattr(Driver, name))
    def method(self: RemoteDriver, *args: Any, **kwargs: Any) -> Any:
        return self._transport.call(name, *args, **kwargs)

    return method


class RemoteDriver(Driver):
    """A connection to hvmond serving ``uri`` on the UNIX socket ``socket_path``.

    ``opened_as`` is the URI the caller used (``test+unix:///default?socket=...``);
    :meth:`uri` answers it, as libvirt does.
    """

    name = "remote"

    def __init__(self, uri: str, socket_path: Path | str, readonly: bool = False,
                 opened_as: str | None = None, tls: TlsPump | None = None) -> None:
        super().__init__()
        self._uri = opened_as or uri
        #: the daemon's socket path (or ``host:port`` when ``tls`` relays a TLS socket)
        self.socket_path = socket_path
        self._event_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._event_thread: threading.Thread | None = None
        self._closed = False
        self._transport = Transport(socket_path, self._event_queue.put, tls=tls)
        try:
            from hvmon import __version__

            opened = self._transport.call(
                "open", uri=uri, readonly=bool(readonly),
                protocol=framing.PROTOCOL_VERSION, version=__version__,
            )
        except BaseException:
            self._transport.close()
            raise
        self.served_uri: str = opened["uri"]
        #: True when the daemon treats this connection as read-only
        self.server_readonly: bool = bool(opened["readonly"])
        self._window = int(opened.get("window", framing.STREAM_WINDOW))
        self._chunk = int(opened.get("chunk", framing.STREAM_CHUNK))
        self.events = RemoteEventBus(self)

    # --- connection -----------------------------------------------------------
    def close(self) -> None:
        """Say goodbye and stop the threads; the daemon's driver stays open."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        if self._event_thread is not None:
            self._event_queue.put(_STOP)
            if self._event_thread is not threading.current_thread():
                self._event_thread.join()

    def uri(self) -> str:
        """The URI this connection was opened with (as libvirt answers)."""
        return self._uri

    # --- events ---------------------------------------------------------------
    def _events(self, on: bool) -> None:
        if on and self._event_thread is None:
            self._event_thread = threading.Thread(target=self._deliver_events, daemon=True,
                                                  name="hvmon-remote-events")
            self._event_thread.start()
        self._transport.call("events_start" if on else "events_stop")

    def _deliver_events(self) -> None:
        """Emit daemon events on :attr:`events`, outside the reader thread.

        Callbacks may call the daemon themselves; the reader thread must stay
        free to deliver those replies.
        """
        while (message := self._event_queue.get()) is not _STOP:
            try:
                record = DomainEventRecord(
                    str(message["uuid"]), str(message["name"]), int(message["id"]),
                    LifecycleEvent(int(message["event"])), int(message["detail"]),
                    float(message["timestamp"]),
                )
            except (KeyError, TypeError, ValueError):
                log.warning("remote: ignoring a malformed event from the daemon")
                continue
            self.events.emit(record)

    # --- daemon-served reads --------------------------------------------------
    def get_snapshot(self, max_age: float | None) -> Snapshot:
        from hvmon.core.snapshot.model import Snapshot

        return Snapshot.from_dict(self._transport.call("get_snapshot", max_age))

    # --- byte streams ---------------------------------------------------------
    def volume_download(self, ref: VolumeRef, offset: int, length: int) -> Iterator[bytes]:
        sink = DownloadSink()
        serial, pending = self._transport.begin("volume_download", (ref, offset, length), {},
                                                stream=sink)
        try:
            pending.wait()
            return DownloadStream(self._transport, sink, serial, self._window)
        except BaseException:
            self._transport.forget(serial)
            raise

    def volume_upload(
        self, ref: VolumeRef, offset: int, length: int, chunks: Iterable[bytes]
    ) -> int:
        stream = UploadStream(self._transport, self._chunk)
        serial, pending = self._transport.begin("volume_upload", (ref, offset, length), {},
                                                stream=stream)
        try:
            stream.pump(serial, chunks)
            if stream.error is not None and not pending.done:
                raise stream.error
            return int(pending.wait())
        finally:
            self._transport.forget(serial)

    def migrate_tunnel_in(self, name: str, chunks: Iterable[bytes]) -> int:
        stream = UploadStream(self._transport, self._chunk)
        serial, pending = self._transport.begin("migrate_tunnel_in", (name,), {},
                                                stream=stream)
        try:
            stream.pump(serial, chunks)
            if stream.error is not None and not pending.done:
                raise stream.error
            return int(pending.wait())
        finally:
            self._transport.forget(serial)

    def pool_clone_volume(
        self, uuid: str, xml: str, source: VolumeRef, progress: Progress | None = None
    ) -> VolumeRef:
        """Clone on the daemon; ``progress`` hears only the end (no per-step reports)."""
        ref: VolumeRef = self._transport.call("pool_clone_volume", uuid, xml, source)
        if progress is not None:
            progress(1, 1)
        return ref

    # --- everything else: forwarded as is -------------------------------------
    hostname = _forward("hostname")
    node_info = _forward("node_info")
    node_free_memory = _forward("node_free_memory")
    hypervisor_version = _forward("hypervisor_version")
    capabilities_xml = _forward("capabilities_xml")
    domain_capabilities_xml = _forward("domain_capabilities_xml")
    compare_cpu = _forward("compare_cpu")
    find_pool_sources = _forward("find_pool_sources")
    nwfilter_list = _forward("nwfilter_list")
    nwfilter_xml = _forward("nwfilter_xml")
    nwfilter_define = _forward("nwfilter_define")
    nwfilter_undefine = _forward("nwfilter_undefine")
    nwfilter_binding_list = _forward("nwfilter_binding_list")
    nwfilter_binding_xml = _forward("nwfilter_binding_xml")
    nwfilter_binding_create = _forward("nwfilter_binding_create")
    nwfilter_binding_delete = _forward("nwfilter_binding_delete")
    daemon_info = _forward("daemon_info")

    list_domains = _forward("list_domains")
    lookup_domain = _forward("lookup_domain")
    define_domain = _forward("define_domain")
    create_domain = _forward("create_domain")
    domain_ref = _forward("domain_ref")
    domain_lifecycle = _forward("domain_lifecycle")
    domain_xml = _forward("domain_xml")
    domain_info = _forward("domain_info")
    domain_state = _forward("domain_state")
    domain_flags = _forward("domain_flags")
    domain_set_autostart = _forward("domain_set_autostart")
    domain_set_memory = _forward("domain_set_memory")
    domain_core_dump = _forward("domain_core_dump")
    migrate_begin = _forward("migrate_begin")
    migrate_prepare = _forward("migrate_prepare")
    migrate_perform = _forward("migrate_perform")
    migrate_finish = _forward("migrate_finish")
    migrate_confirm = _forward("migrate_confirm")
    migrate_p2p = _forward("migrate_p2p")
    domain_set_vcpus = _forward("domain_set_vcpus")
    domain_attach_device = _forward("domain_attach_device")
    domain_detach_device = _forward("domain_detach_device")
    domain_job_info = _forward("domain_job_info")
    domain_vcpu_info = _forward("domain_vcpu_info")
    domain_pin_vcpu = _forward("domain_pin_vcpu")
    domain_stats = _forward("domain_stats")
    all_domain_stats = _forward("all_domain_stats")

    list_pools = _forward("list_pools")
    lookup_pool = _forward("lookup_pool")
    define_pool = _forward("define_pool")
    create_pool = _forward("create_pool")
    pool_action = _forward("pool_action")
    pool_info = _forward("pool_info")
    pool_xml = _forward("pool_xml")
    pool_flags = _forward("pool_flags")
    pool_set_autostart = _forward("pool_set_autostart")
    pool_list_volumes = _forward("pool_list_volumes")
    pool_create_volume = _forward("pool_create_volume")
    lookup_volume = _forward("lookup_volume")
    volume_info = _forward("volume_info")
    volume_xml = _forward("volume_xml")
    volume_delete = _forward("volume_delete")
    volume_wipe = _forward("volume_wipe")
    volume_resize = _forward("volume_resize")

    list_networks = _forward("list_networks")
    lookup_network = _forward("lookup_network")
    define_network = _forward("define_network")
    create_network = _forward("create_network")
    network_action = _forward("network_action")
    network_xml = _forward("network_xml")
    network_flags = _forward("network_flags")
    network_set_autostart = _forward("network_set_autostart")
    network_dhcp_leases = _forward("network_dhcp_leases")

    list_secrets = _forward("list_secrets")
    lookup_secret = _forward("lookup_secret")
    define_secret = _forward("define_secret")
    secret_xml = _forward("secret_xml")
    secret_set_value = _forward("secret_set_value")
    secret_get_value = _forward("secret_get_value")
    secret_undefine = _forward("secret_undefine")
