"""The in-tree ``builtin`` plugin: serves ``test:///`` and ``qemu:///`` URIs in the daemon,
and declares the daemon's ``[tls]``, ``[access]`` and ``[audit]`` tables.

Registered in the ``hvmon.plugins`` entry-point group like any other plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hvmon.hookspecs import hookimpl

if TYPE_CHECKING:
    from hvmon.core.drivers.base import Driver
    from hvmon.core.uri import ConnectURI
    from hvmon.daemon.config import ConfigSection


@hookimpl
def hvmon_driver_for_uri(uri: ConnectURI) -> Driver | None:
    """The test driver for local ``test:///`` URIs, the QEMU driver for ``qemu:///``."""
    if not uri.is_local:
        return None
    if uri.driver == "qemu":
        from hvmon.core.drivers import open_local_qemu

        return open_local_qemu(uri)
    if uri.driver != "test":
        return None
    from hvmon.core.drivers.test.driver import TestDriver

    return TestDriver(uri)


@hookimpl
def hvmon_config_schema() -> Sequence[ConfigSection]:
    """The daemon's ``[tls]``, ``[access]`` and ``[audit]`` tables."""
    from hvmon.daemon.rpc.settings import config_sections

    return config_sections()
