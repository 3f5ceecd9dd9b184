"""The ``hvmon`` command (virsh-like): see :mod:`hvmon.cli.main`."""
