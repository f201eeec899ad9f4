"""`rag doctor`, `rag smoke` and `rag cost`: a deployed stack, before and after `pulumi up`."""
