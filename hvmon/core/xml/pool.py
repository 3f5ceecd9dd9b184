"""``<pool>`` documents (storage pools)."""

from __future__ import annotations

from hvmon.core.xml.base import XmlChildren, XmlObject, XmlProperty, read_size, to_int, write_size


class SourceHost(XmlObject):
    ROOT = "host"
    name = XmlProperty[str]("@name")
    port = XmlProperty[int]("@port", read=to_int)


class Pool(XmlObject):
    """A storage pool definition."""

    ROOT = "pool"
    type = XmlProperty[str]("@type")
    name = XmlProperty[str]("name")
    uuid = XmlProperty[str]("uuid")
    source_hosts = XmlChildren(SourceHost, "source/host")
    source_device = XmlProperty[str]("source/device/@path")
    source_dir = XmlProperty[str]("source/dir/@path")
    source_name = XmlProperty[str]("source/name")
    source_format = XmlProperty[str]("source/format/@type")
    initiator_iqn = XmlProperty[str]("source/initiator/iqn/@name")
    target_path = XmlProperty[str]("target/path")

    def _size(self, tag: str) -> int | None:
        return read_size(self.find(tag), "bytes")

    def _set_size(self, tag: str, value: int) -> None:
        write_size(self.ensure(tag), value, "bytes")

    @property
    def capacity(self) -> int | None:
        return self._size("capacity")

    @capacity.setter
    def capacity(self, value: int) -> None:
        self._set_size("capacity", value)

    @property
    def allocation(self) -> int | None:
        return self._size("allocation")

    @allocation.setter
    def allocation(self, value: int) -> None:
        self._set_size("allocation", value)

    @property
    def available(self) -> int | None:
        return self._size("available")

    @available.setter
    def available(self, value: int) -> None:
        self._set_size("available", value)

    @property
    def source_iqn(self) -> str:
        """Target IQN for iSCSI pools (``source/device/@path``), whitespace trimmed."""
        return (self.source_device or "").strip()
