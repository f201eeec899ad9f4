"""The ``rag`` command line: local mode (serve, ingest, ask, chat, docs, delete)."""
