"""One module per mode; each has ``build(options, source) -> nagiosplugin.Check``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nagiosplugin import Check

    from hvmon.plugins.nagios.options import Options
    from hvmon.plugins.nagios.source import Source


def build(options: Options, source: Source) -> Check:
    """The check for ``options.mode`` (only that mode's module is imported)."""
    module = importlib.import_module(f"{__name__}.{options.mode}")
    return module.build(options, source)
