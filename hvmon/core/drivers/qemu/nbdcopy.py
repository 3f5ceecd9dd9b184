"""Storage migration over NBD (libvirt's ``--copy-storage-all``, non-shared disks).

The source's Begin lists the disks to copy (:func:`plan`): every writable,
non-shareable ``disk`` with a local ``file``/``block`` source, with its format,
virtual size and, when it is a pool volume, the pool and volume names. The
destination's Prepare creates each one that is missing there (a volume of the
same name, capacity and format in its pool of the same name; a file at the
same path by ``qemu-img``), starts the incoming QEMU with them, then QEMU's
NBD server on a free port of ``migration_address`` exporting each disk's
format node writable (:func:`start_server`). The source's Perform mirrors
each disk into its export (``blockdev-mirror`` to an ``nbd`` node, the
:class:`Mirrors`), waits until every job is ready, migrates the memory with
``pause-before-switchover``, and when QEMU stops the guest before the switch
over cancels the ready jobs (the destination then holds a point-in-time copy
of a paused guest, the source stays consistent) before QEMU sends the device
state. Finish stops the NBD server before the guest runs there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from hvmon.core.drivers.qemu.cmdline import disk_luks_secret
from hvmon.core.errors import HvmonError, OperationFailed, Unsupported
from hvmon.core.xml.domain import Domain as DomainXML

#: ``execute(command, arguments)``: one QMP command on the guest's monitor
Execute = Callable[[str, Mapping[str, Any] | None], Any]

JOB_PREFIX = "migrate-"


def _alias(disk: etree._Element) -> str:
    alias = disk.find("alias")
    return alias.get("name", "") if alias is not None else ""


def copyable(live: DomainXML) -> list[etree._Element]:
    """The disks a storage migration copies (libvirt skips read-only, shareable, empty
    and network disks: the destination reaches those as they are)."""
    found = []
    for disk in live.element.iterfind("devices/disk"):
        if disk.get("device", "disk") != "disk" or disk.get("type", "file") not in (
                "file", "block"):
            continue
        if disk.find("readonly") is not None or disk.find("shareable") is not None:
            continue
        source = disk.find("source")
        if source is None or not (source.get("file") or source.get("dev")):
            continue
        found.append(disk)
    return found


def block_nodes(execute: Execute) -> dict[str, dict[str, Any]]:
    """``query-block``'s ``inserted`` of each disk, by the disk's device alias."""
    nodes: dict[str, dict[str, Any]] = {}
    for dev in execute("query-block", None) or []:
        qdev = str(dev.get("qdev", ""))
        inserted = dev.get("inserted")
        if not qdev or not inserted:
            continue
        # "/machine/peripheral/virtio-disk0/virtio-backend" or the device id itself
        alias = qdev.split("/")[3] if qdev.startswith("/machine/peripheral/") else qdev
        nodes[alias] = inserted
    return nodes


def plan(live: DomainXML, execute: Execute,
         volume_of: Callable[[str], tuple[str, str] | None]) -> list[dict[str, Any]]:
    """What the source tells the destination about each disk to copy.

    ``volume_of(path)`` gives ``(pool, volume)`` when the path is a pool volume here.
    """
    nodes = block_nodes(execute)
    disks = []
    for disk in copyable(live):
        target = disk.find("target")
        dev = target.get("dev", "") if target is not None else ""
        alias = _alias(disk)
        if disk_luks_secret(disk, f"disk '{dev}'") is not None:
            raise Unsupported(f"disk {dev}: copying an encrypted disk is not supported")
        node = nodes.get(alias)
        if node is None or not node.get("node-name"):
            raise Unsupported(f"disk {dev}: storage migration needs -blockdev (a node name "
                              "to mirror)")
        source = disk.find("source")
        assert source is not None
        path = source.get("file") or source.get("dev") or ""
        driver = disk.find("driver")
        entry: dict[str, Any] = {
            "target": dev, "alias": alias, "type": disk.get("type", "file"), "path": path,
            "format": (driver.get("type") if driver is not None else None) or "raw",
            "capacity": int((node.get("image") or {}).get("virtual-size", 0)),
            "node": str(node["node-name"]), "pool": "", "volume": ""}
        found = volume_of(path)
        if found is not None:
            entry["pool"], entry["volume"] = found
        disks.append(entry)
    return disks


def as_volume_disks(live: DomainXML, disks: list[dict[str, Any]]) -> None:
    """Turn the source's resolved pool-volume disks back into ``<disk type='volume'>``, so
    the destination's start resolves them in its own pool of the same name."""
    by_target = {d["target"]: d for d in disks if d.get("pool")}
    for disk in live.element.iterfind("devices/disk"):
        target = disk.find("target")
        entry = by_target.get(target.get("dev", "") if target is not None else "")
        if entry is None:
            continue
        old = disk.find("source")
        assert old is not None
        source = etree.Element("source", pool=entry["pool"], volume=entry["volume"])
        source.tail = old.tail
        for child in old:
            source.append(child)
        old.getparent().replace(old, source)
        disk.set("type", "volume")


def start_server(execute: Execute, host: str, port: int,
                 disks: list[dict[str, Any]]) -> dict[str, Any]:
    """NBD server of the incoming QEMU, each disk exported writable; the cookie part."""
    nodes = block_nodes(execute)
    execute("nbd-server-start", {"addr": {"type": "inet", "data": {
        "host": host.strip("[]"), "port": str(port)}}})
    exports = {}
    for entry in disks:
        node = nodes.get(entry["alias"])
        if node is None or not node.get("node-name"):
            raise OperationFailed(f"disk {entry['target']}: the incoming QEMU has no node "
                                  "for it")
        execute("block-export-add", {"type": "nbd", "id": f"{JOB_PREFIX}{entry['alias']}",
                                     "node-name": node["node-name"],
                                     "name": entry["target"], "writable": True})
        exports[entry["target"]] = entry["target"]
    return {"host": host.strip("[]"), "port": port, "exports": exports}


def stop_server(execute: Execute) -> None:
    """End the NBD server (and its exports) before the guest runs on the destination."""
    execute("nbd-server-stop", None)


class Mirrors:
    """The source's mirror jobs, one per disk, into the destination's NBD exports."""

    def __init__(self, execute: Execute, disks: list[dict[str, Any]], nbd: dict[str, Any],
                 speed: int = 0) -> None:
        self._execute, self._disks, self._nbd, self._speed = execute, disks, nbd, speed
        self.jobs: list[str] = []
        self._nodes: list[str] = []
        self.total = self.processed = 0

    def start(self) -> None:
        """Connect to each export and start ``blockdev-mirror`` (``sync: full``)."""
        for entry in self._disks:
            export = self._nbd["exports"].get(entry["target"])
            if export is None:
                raise OperationFailed(f"disk {entry['target']}: the destination exports no "
                                      "NBD target for it")
            node = f"{JOB_PREFIX}{entry['alias']}-nbd"
            self._execute("blockdev-add", {
                "driver": "nbd", "node-name": node, "export": export,
                "server": {"type": "inet", "host": self._nbd["host"],
                           "port": str(self._nbd["port"])}})
            self._nodes.append(node)
            job = f"{JOB_PREFIX}{entry['alias']}"
            args: dict[str, Any] = {"job-id": job, "device": entry["node"], "target": node,
                                    "sync": "full", "auto-dismiss": False}
            if self._speed:
                args["speed"] = self._speed
            self._execute("blockdev-mirror", args)
            self.jobs.append(job)

    def poll(self) -> bool:
        """Figures updated from ``query-block-jobs``; True when every job is ready.

        A job that failed (the destination went away) or vanished raises.
        """
        seen = {str(j.get("device")): j for j in self._execute("query-block-jobs", None)
                if str(j.get("device")) in self.jobs}
        total = processed = 0
        ready = True
        for job in self.jobs:
            info = seen.get(job)
            if info is None:
                raise OperationFailed(f"storage migration: block job {job} disappeared")
            if info.get("error") or info.get("status") in ("aborting", "concluded", "null"):
                raise OperationFailed(f"storage migration: copying {job.removeprefix(JOB_PREFIX)} "
                                      f"failed: {info.get('error') or info.get('status')}")
            total += int(info.get("len", 0))
            processed += int(info.get("offset", 0))
            ready = ready and bool(info.get("ready"))
        self.total, self.processed = total, processed
        return ready

    def finish(self, wait: Callable[[float], None], deadline: float = 60.0) -> None:
        """Cancel the ready jobs (the guest is paused: the copy is complete), wait until
        they end, check none failed, and drop the NBD nodes."""
        for job in self.jobs:
            self._execute("block-job-cancel", {"device": job})
        end = time.monotonic() + deadline
        pending = list(self.jobs)
        while pending:
            jobs = {str(j.get("device")): j for j in self._execute("query-block-jobs", None)}
            for job in list(pending):
                info = jobs.get(job)
                if info is None or info.get("status") == "concluded":
                    if info is not None and info.get("error"):
                        raise OperationFailed(f"storage migration: copying "
                                              f"{job.removeprefix(JOB_PREFIX)} failed: "
                                              f"{info['error']}")
                    pending.remove(job)
            if pending:
                if time.monotonic() > end:
                    raise OperationFailed("storage migration: the mirror jobs did not end")
                wait(0.01)
        self._dismiss_and_drop()

    def abort(self) -> None:
        """Failure: force-cancel whatever runs and drop the NBD nodes (never raises)."""
        for job in self.jobs:
            with contextlib.suppress(HvmonError):
                self._execute("block-job-cancel", {"device": job, "force": True})
        end = time.monotonic() + 10.0
        while self.jobs and time.monotonic() < end:
            try:
                jobs = {str(j.get("device")): j for j in
                        self._execute("query-block-jobs", None)}
            except HvmonError:
                break
            if all(jobs.get(j, {}).get("status", "concluded") == "concluded"
                   for j in self.jobs):
                break
            time.sleep(0.02)
        self._dismiss_and_drop()

    def _dismiss_and_drop(self) -> None:
        for job in self.jobs:
            with contextlib.suppress(HvmonError):  # an auto-dismissed or vanished job
                self._execute("job-dismiss", {"id": job})
        self.jobs = []
        for node in self._nodes:  # the source QEMU ends with the migration anyway
            with contextlib.suppress(HvmonError):
                self._execute("blockdev-del", {"node-name": node})
        self._nodes = []
