"""The Pulumi program: the whole serverless RAG stack per environment.

Nothing here runs at import time; ``infra/__main__.py`` reads the stack config
and calls :func:`infra.stack.build_stack`. The services never import this
package (Lambda cold starts must not pay for Pulumi).
"""
