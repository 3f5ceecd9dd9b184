"""Tests of the plugin host, the agent supervisor and hvmond."""
