"""AMQP agent and datacenter console (RabbitMQ): heartbeats, data, events and methods.

See docs/amqp.md. Nothing here runs at import time.
"""
