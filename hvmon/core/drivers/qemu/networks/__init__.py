"""Virtual networks of the QEMU driver: bridges, dnsmasq, nftables, taps, traffic filters.

:mod:`.part` is the driver mixin; :mod:`.store` keeps the networks, :mod:`.backend`
builds one on the host (:mod:`.links`, :mod:`.dnsmasq`, :mod:`.firewall`),
:mod:`.guests` gives guest NICs their taps and filters, :mod:`.bindings` and
:mod:`.nftfilter` bind network filters to ports. See docs/networks.md.
"""
