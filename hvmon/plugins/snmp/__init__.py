"""The SNMP agent plugin: HVMON-MIB, the LIBVIRT-MIB view, standalone and AgentX modes."""
