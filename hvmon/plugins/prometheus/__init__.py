"""The Prometheus exporter agent (see docs/prometheus.md)."""
