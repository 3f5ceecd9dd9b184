"""AgentX (RFC 2741) subagent: hvmon behind a host's net-snmp ``snmpd`` (``master agentx``).

``pdu`` is the wire codec, ``session`` one connection to the master (framing,
our requests and their responses), ``subagent`` the
:class:`~hvmon.plugins.snmp.agentx.subagent.AgentxSubagent` the SNMP agent
runs in ``mode = "agentx"``: it registers the view's roots and answers the
master from the view's table.
"""
