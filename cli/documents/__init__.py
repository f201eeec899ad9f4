"""`rag ingest`, `rag docs`, `rag delete` and `rag reconcile`: the documents a destination holds."""
