"""The QEMU/KVM driver: real ``qemu-system-*`` processes managed over QMP.

Capability probing per binary (:mod:`.caps`), canonical machine types
(:mod:`.machine`), stable PCI addresses (:mod:`.addresses`), command lines in
the best practice the probed QEMU allows (:mod:`.cmdline`), and the processes,
monitors, domains and statistics built on them. Importing this package starts
nothing.
"""
