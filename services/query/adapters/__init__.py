"""Adapters for the query service's own ports (``services/query/ports.py``).

An adapter lives beside its port: the ports in ``shared/ports.py`` have their
adapters in ``shared/adapters/``; the ports only this service has (running
requests, conversations, self-invocation, the Management API's sinks) have
theirs here. See docs/architecture.md.
"""
