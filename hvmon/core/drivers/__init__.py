"""Driver selection by URI."""

from __future__ import annotations

from hvmon.core.drivers.base import Driver
from hvmon.core.errors import NoConnect
from hvmon.core.uri import parse_uri


def open_driver(uri: str) -> Driver:
    """Open the driver that serves ``uri`` in this process.

    Only local URIs of in-process drivers are handled here; remote transports
    are provided by the daemon's client driver once it is registered.
    """
    parsed = parse_uri(uri)
    if parsed.driver == "test" and parsed.is_local:
        from hvmon.core.drivers.test.driver import TestDriver

        return TestDriver(parsed)
    raise NoConnect(f"no driver for URI '{uri}'")
