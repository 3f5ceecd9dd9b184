"""Tests of the remote protocol: RemoteDriver against an in-process RpcServer."""
