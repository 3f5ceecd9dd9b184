"""``<secret>`` documents. The value is never part of the XML."""

from __future__ import annotations

from hvmon.core.xml.base import XmlObject, XmlProperty, yes_no


class Secret(XmlObject):
    """A secret definition (metadata only)."""

    ROOT = "secret"
    ephemeral = XmlProperty[bool]("@ephemeral", read=yes_no, default=False)
    private = XmlProperty[bool]("@private", read=yes_no, default=False)
    uuid = XmlProperty[str]("uuid")
    description = XmlProperty[str]("description")
    usage_type = XmlProperty[str]("usage/@type")
    usage_volume = XmlProperty[str]("usage/volume")
    usage_name = XmlProperty[str]("usage/name")
    usage_target = XmlProperty[str]("usage/target")

    @property
    def usage_id(self) -> str:
        """The usage key libvirt looks secrets up by (volume path, name or target)."""
        return self.usage_volume or self.usage_name or self.usage_target or ""
