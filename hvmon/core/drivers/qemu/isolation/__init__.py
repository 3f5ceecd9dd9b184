"""Isolation of QEMU processes: DAC (each guest an unprivileged user, :mod:`.identity`),
namespaces (mount, PID), cgroups, pinning, probe.

Configured per driver root in ``etc/qemu.conf`` (:mod:`.config`); what the
machine cannot do is found by :func:`.probe.probe`. :class:`.hook.IsolationHook`
is the start hook the driver registers.
"""
