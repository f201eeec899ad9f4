"""The typed domain shared by the indexer and the query service.

Messages (``ingest``), the WebSocket protocol (``protocol``), documents and
chunks (``documents``), settings (``settings``), the ports to the outside
world (``ports``) and their real adapters (``adapters``). Nothing here imports
Pulumi or either service.
"""
