"""``rag serve``: its options, and the checks made before anything loads (a
busy port, --model without --model-url). The server: ``cli.serve.server``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import DataDir, fail, run, settings_for
from shared.errors import RagError


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind (local only by default)")] = (
        "127.0.0.1"
    ),
    tokens: Annotated[
        Path | None,
        typer.Option(
            help='Tokens file {"<token>": {"principal": "alice", "groups": ["hr"]}}: '
            "each connection needs a token and reads what its groups allow "
            "(without it: single user, reads everything)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    model_url: Annotated[
        str | None,
        typer.Option(
            "--model-url",
            help="Answer with an OpenAI-compatible server you run instead of the tiny packaged "
            "model: Ollama http://127.0.0.1:11434, llama.cpp's server http://127.0.0.1:8081, "
            "vLLM http://127.0.0.1:8000 (sets RAG_MODEL__BACKEND=openai and its URL)",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="With --model-url: the server's model to use (default: its only one)",
        ),
    ] = None,
) -> None:
    """Run the chat page, WebSocket API (/ws) and indexer in one process."""
    from cli.serve.port_check import port_problem

    # Before loading anything: a busy port is known in milliseconds, not after the model.
    problem = port_problem(host, port)
    if problem is not None:
        raise fail(f"{problem}: stop it, or pick another port with --port")
    if model and not model_url:
        raise fail("--model names a model on the server given by --model-url", 2)
    from cli.serve.server import serve as run_server

    settings = settings_for(data_dir)
    if model_url:
        from cli.serve.model_url import use_model_server

        settings = run(use_model_server(settings, model_url, model))
    try:
        run_server(settings, host, port, tokens)
    except RagError as exc:  # e.g. an unreadable or invalid tokens file
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"can't listen on {host}:{port} ({exc.strerror}): use --port") from None
