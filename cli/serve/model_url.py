"""``rag serve --model-url URL [--model NAME]``: answers from an OpenAI-compatible
server the user already runs (Ollama, llama.cpp's ``llama-server``, vLLM, LM
Studio) instead of the tiny packaged model, in one flag.

It sets what ``RAG_MODEL__BACKEND=openai`` + ``RAG_MODEL__OPENAI_BASE_URL`` +
``RAG_MODEL__OPENAI_MODEL`` set (an API key still comes from
``RAG_MODEL__OPENAI_API_KEY``). A URL without a path gets ``/v1`` (where all
of them serve the API). Without ``--model`` (or ``RAG_MODEL__OPENAI_MODEL``)
the server's model list decides: its only model, or an error naming them. The
server is asked before anything loads, within ``LIST_TIMEOUT_S``, so a wrong
URL is a clear message at start, not an error on the first question.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from shared.adapters.openai_compatible.chat import KEY_SETTING
from shared.errors import ConfigurationError
from shared.settings import Settings

LIST_TIMEOUT_S = 10.0


def base_url(url: str) -> str:
    """``http://host:11434`` -> ``http://host:11434/v1``; a URL with a path is kept."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"--model-url {url!r} is not an http(s) URL (e.g. http://127.0.0.1:11434 for Ollama)"
        )
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def pick_model(served: list[str] | None, asked: str | None, url: str) -> str:
    """The model to use: the one asked for, else the server's only one.
    ``served`` None: the server does not list its models."""
    if asked:
        if served and asked not in served:
            raise ConfigurationError(
                f"{url} has no model {asked!r}; it has: {', '.join(served)} (use --model NAME)"
            )
        return asked
    if not served:
        raise ConfigurationError(f"{url} lists no models: name one with --model NAME")
    if len(served) > 1:
        raise ConfigurationError(
            f"{url} has several models ({', '.join(served)}): pick one with --model NAME"
        )
    return served[0]


async def served_models(url: str, api_key: str | None) -> list[str] | None:
    """``GET {url}/models``: the ids, or None when the server has no such list."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = aiohttp.ClientTimeout(total=LIST_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{url}/models", headers=headers) as response,
        ):
            if response.status in (401, 403):
                raise ConfigurationError(
                    f"{url} wants an API key (HTTP {response.status}): set {KEY_SETTING}"
                )
            if response.status != 200:
                return None
            listing = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot reach the model server at {url} ({type(exc).__name__}: {exc}): "
            "is it running (e.g. `ollama serve`)?"
        ) from exc
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


async def use_model_server(settings: Settings, url: str, model: str | None) -> Settings:
    """``settings`` with the chat model on the OpenAI-compatible server at ``url``."""
    base = base_url(url)
    key = settings.model.openai_api_key
    served = await served_models(base, key.get_secret_value() if key else None)
    name = pick_model(served, model or settings.model.openai_model, base)
    chat = settings.model.model_copy(
        update={"backend": "openai", "openai_base_url": base, "openai_model": name}
    )
    return settings.model_copy(update={"model": chat})
