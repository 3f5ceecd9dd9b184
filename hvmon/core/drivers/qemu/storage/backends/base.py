"""The backend interface every pool type implements, and the shared helpers."""

from __future__ import annotations

from dataclasses import dataclass

from hvmon.core.drivers.base import Progress
from hvmon.core.drivers.qemu.secrets import SecretStore
from hvmon.core.drivers.qemu.storage.model import Vol
from hvmon.core.drivers.qemu.storage.qemuimg import QemuImg
from hvmon.core.drivers.qemu.storage.run import Runner
from hvmon.core.errors import InvalidXML, Unsupported
from hvmon.core.xml.pool import Pool as PoolXML
from hvmon.core.xml.volume import Volume as VolumeXML


@dataclass
class Tools:
    """What backends run tools through (a recording runner in command-line tests)."""

    runner: Runner
    secrets: SecretStore

    @property
    def qemu_img(self) -> QemuImg:
        return QemuImg(self.runner)


@dataclass(frozen=True)
class Usage:
    """Pool sizes in bytes."""

    capacity: int
    allocation: int
    available: int


def need_source_host(pool: PoolXML) -> tuple[str, int]:
    """The first ``<source><host>`` as (name, port); InvalidXML without one."""
    if not pool.source_hosts or not pool.source_hosts[0].name:
        raise InvalidXML("missing storage pool source host name")
    host = pool.source_hosts[0]
    return host.name, host.port or 0


def chap(pool: PoolXML, secrets: SecretStore) -> tuple[str, bytes] | None:
    """``<source><auth type='chap' username=...><secret usage|uuid/>``: (user, value)."""
    auth = pool.find("source/auth")
    if auth is None:
        return None
    if auth.get("type", "chap") != "chap":
        raise Unsupported(f"pool auth type '{auth.get('type')}' is not supported (chap)")
    secret = auth.find("secret")
    user = auth.get("username", "")
    if secret is None or not user:
        raise InvalidXML("pool <auth> needs a username and a <secret uuid|usage>")
    return user, secrets.resolve(secret.get("uuid"), None, secret.get("usage"))


class Backend:
    """One pool type. Methods raise one-line HvmonErrors; the pool table holds the lock."""

    kind = "base"
    #: volumes can be created and deleted through the pool
    volume_ops = False

    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    def check(self, pool: PoolXML) -> None:
        """The checks libvirt makes when it parses a pool of this type."""

    def build(self, pool: PoolXML) -> None:
        """Make the pool's storage (mkdir, mkfs, vgcreate); nothing by default."""

    def start(self, pool: PoolXML) -> None:
        """Activate (mount, log in); nothing by default."""

    def stop(self, pool: PoolXML) -> None:
        """Deactivate (unmount, log out); nothing by default."""

    def delete(self, pool: PoolXML) -> None:
        raise Unsupported(f"pool type '{self.kind}' does not support pool deletion")

    def refresh(self, pool: PoolXML) -> tuple[list[Vol], Usage]:
        raise NotImplementedError

    def create_volume(self, pool: PoolXML, vol: VolumeXML, secret: str | None,
                      explicit_allocation: bool) -> None:
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume creation")

    def clone_volume(self, pool: PoolXML, vol: VolumeXML, source: Vol,
                     progress: Progress | None) -> None:
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume cloning")

    def delete_volume(self, pool: PoolXML, vol: Vol) -> None:
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume deletion")

    def resize_volume(self, pool: PoolXML, vol: Vol, capacity: int) -> None:
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume resize")

    def wipe_volume(self, pool: PoolXML, vol: Vol) -> None:
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume wipe")

    def local_path(self, vol: Vol) -> str:
        """A host path for upload/download; Unsupported for network volumes."""
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume "
                          "upload and download")

    def volume_path_for(self, pool: PoolXML, name: str) -> str:
        """Where a new volume called ``name`` goes."""
        raise Unsupported(f"storage pool type '{self.kind}' does not support volume creation")
