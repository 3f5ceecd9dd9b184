"""``hvmon console``: the datacenter view over the broker (client, views, command)."""
