"""What the storage part keeps per pool and per volume."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from hvmon.core.types import VolumeType
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML


@dataclass
class Vol:
    """One volume as a backend reports it."""

    name: str
    key: str
    path: str
    type: VolumeType
    capacity: int
    allocation: int
    format: str = "raw"
    backing: str | None = None
    backing_format: str | None = None
    #: the secret UUID of a LUKS volume ("": encrypted, secret unknown; None: plain)
    secret: str | None = None

    def to_xml(self) -> str:
        """libvirt's ``<volume>`` shape."""
        root = etree.Element("volume", type=self.type.label)
        etree.SubElement(root, "name").text = self.name
        etree.SubElement(root, "key").text = self.key
        etree.SubElement(root, "source")
        etree.SubElement(root, "capacity", unit="bytes").text = str(self.capacity)
        etree.SubElement(root, "allocation", unit="bytes").text = str(self.allocation)
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "path").text = self.path
        etree.SubElement(target, "format", type=self.format)
        if self.secret is not None:  # "": encrypted, no secret known for it
            enc = etree.SubElement(target, "encryption", format="luks")
            if self.secret:
                etree.SubElement(enc, "secret", type="passphrase", uuid=self.secret)
        if self.backing:
            store = etree.SubElement(root, "backingStore")
            etree.SubElement(store, "path").text = self.backing
            etree.SubElement(store, "format", type=self.backing_format or "raw")
        etree.indent(root, space="  ")
        return etree.tostring(root, encoding="unicode") + "\n"

    def as_xml(self) -> VolumeXML:
        return VolumeXML.from_xml(self.to_xml())


@dataclass(eq=False)
class PoolObj:
    """A pool: persistent definition (None: transient), live definition, volumes."""

    uuid: str
    name: str
    config: PoolXML | None
    live: PoolXML
    active: bool = False
    autostart: bool = False
    volumes: dict[str, Vol] = field(default_factory=dict)
    capacity: int = 0
    allocation: int = 0
    available: int = 0

    @property
    def persistent(self) -> bool:
        return self.config is not None
