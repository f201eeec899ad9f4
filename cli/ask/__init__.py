"""`rag ask` and `rag chat`: answers streamed to the terminal."""
