"""`rag serve`: the whole product in one process (chat page, WebSocket API, indexer)."""
