"""The stack's ComponentResources, one module per concern."""
