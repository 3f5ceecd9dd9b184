"""The in-tree ``prometheus`` plugin: registers the exporter agent.

Registered in the ``hvmon.plugins`` entry-point group like any other plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

from hvmon.daemon.agent import AgentSpec
from hvmon.hookspecs import hookimpl


@hookimpl
def hvmon_add_agents() -> Sequence[AgentSpec]:
    """The ``prometheus`` agent (docs/prometheus.md)."""
    from hvmon.plugins.prometheus.agent import (
        DEFAULT_LISTEN,
        OPTIONS,
        PrometheusAgent,
        validate_options,
    )

    return [AgentSpec("prometheus", PrometheusAgent,
                      "Prometheus exporter: /metrics from the host's snapshot",
                      listen=DEFAULT_LISTEN, options=OPTIONS, validate=validate_options)]
