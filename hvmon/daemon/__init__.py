"""hvmond: the daemon (config, plugin host, agents, snapshot cache, remote protocol)."""
