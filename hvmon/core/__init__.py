"""hvmon's host-management core: connections, objects, drivers, XML."""
