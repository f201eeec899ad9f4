"""`rag eval`: retrieval and answer evaluation over question sets."""
