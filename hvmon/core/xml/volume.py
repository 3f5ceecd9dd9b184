"""``<volume>`` documents (storage volumes)."""

from __future__ import annotations

from hvmon.core.xml.base import XmlObject, XmlProperty, read_size, write_size


class Volume(XmlObject):
    """A storage volume definition."""

    ROOT = "volume"
    type = XmlProperty[str]("@type")
    name = XmlProperty[str]("name")
    key = XmlProperty[str]("key")
    target_path = XmlProperty[str]("target/path")
    target_format = XmlProperty[str]("target/format/@type")
    backing_path = XmlProperty[str]("backingStore/path")

    @property
    def capacity(self) -> int | None:
        """Capacity in bytes."""
        return read_size(self.find("capacity"), "bytes")

    @capacity.setter
    def capacity(self, value: int) -> None:
        write_size(self.ensure("capacity"), value, "bytes")

    @property
    def allocation(self) -> int | None:
        """Allocation in bytes (None when absent)."""
        return read_size(self.find("allocation"), "bytes")

    @allocation.setter
    def allocation(self, value: int) -> None:
        write_size(self.ensure("allocation"), value, "bytes")

    @property
    def is_encrypted(self) -> bool:
        return self.find("target/encryption") is not None
