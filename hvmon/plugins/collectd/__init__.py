"""collectd integration: the ``collectd-exec`` command and the ``collectd`` push agent.

See docs/collectd.md. ``values`` turns a snapshot into value lists named like
collectd's virt plugin; ``text`` writes them as Exec-plugin ``PUTVAL`` lines,
``network`` as binary-protocol packets.
"""
