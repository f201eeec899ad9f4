"""The ChatModel port on any OpenAI-compatible server: ``POST {base}/chat/completions``
with ``stream: true`` (server-sent events). Ollama, llama.cpp's ``llama-server``,
vLLM, LM Studio and hosted APIs speak it.

Settings: ``RAG_MODEL__BACKEND=openai``, ``RAG_MODEL__OPENAI_BASE_URL`` (e.g.
``http://127.0.0.1:11434/v1`` for Ollama), ``RAG_MODEL__OPENAI_MODEL`` and,
if the server wants one, ``RAG_MODEL__OPENAI_API_KEY`` (a deployed stack sets
``RAG_MODEL__OPENAI_API_KEY_SECRET_ARN`` instead: the key is read from Secrets
Manager on the first answer, ``shared/adapters/aws/secrets.py``).

The server applies the model's own chat template, so this adapter's prompt
family is ``messages``: the query service's prompt is then a JSON list of
``{"role", "content"}`` objects (``services.query.answer.prompts.messages_prompt``)
that is sent as ``messages`` unchanged.

Errors become ``ModelError`` with the fix in the message: an unreachable
server names the URL; 401/403 says how to set the key; an unknown model lists
the server's models (``GET {base}/models``) when it gives them; 429 and 503
(rate limited, overloaded, loading) are ``ModelUnavailable``: the client gets
``model_unavailable``, "try again" (with the server's Retry-After). A stream
that breaks after some tokens, or has a line it can't read, raises after the
tokens before the break were yielded (those of the same network read too), so
the client keeps them and gets ``model_failed``.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import aiohttp

from shared.errors import ConfigurationError, ModelError, ModelUnavailable
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import Settings

FAMILY = "messages"
KEY_SETTING = "RAG_MODEL__OPENAI_API_KEY"
MAX_STOP = 4  # OpenAI's limit on stop sequences
_FINISH = {"stop": StopReason.END, "length": StopReason.LENGTH, "eos": StopReason.END}
# Rate limited (429) or not serving yet (503: llama.cpp while loading, vLLM
# and hosted APIs when overloaded): transient, so "try again", not "failed".
THROTTLED = (429, 503)
# Servers don't share their tokenizer; ~3 characters per token over-counts
# English, the safe side of a context budget.
CHARS_PER_TOKEN = 3.0


def request_body(
    model: str, prompt: str, params: GenerationParams, penalties: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The streaming chat-completions request; ``penalties`` (frequency_penalty,
    presence_penalty) are sent only when set: off by default, since servers
    differ in what they accept and a penalty also discourages repeating the
    source's own words."""
    body: dict[str, Any] = {
        "model": model,
        "messages": prompt_messages(prompt),
        "stream": True,
        "stream_options": {"include_usage": True},  # the last chunk then carries token counts
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.stop:
        body["stop"] = list(params.stop[:MAX_STOP])
    body.update({k: v for k, v in (penalties or {}).items() if v is not None})
    return body


def prompt_messages(prompt: str) -> list[dict[str, str]]:
    """The ``messages`` prompt family's JSON, or the whole text as one user turn
    (a prompt built for another family still gets an answer)."""
    try:
        parsed = json.loads(prompt)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in parsed
    ):
        return [{"role": m["role"], "content": m["content"]} for m in parsed]
    return [{"role": "user", "content": prompt}]


class SseParser:
    """``data:`` lines of a chat-completions stream -> token texts and the finish."""

    def __init__(self) -> None:
        self.stop_reason: StopReason | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.done = False  # ``data: [DONE]`` arrived
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[str]:
        """The texts of the complete lines in ``data``, in order. A line that
        can't be read raises ModelError after the texts before it were
        yielded: one network read often holds several lines, and a good delta
        must not be lost with the bad line behind it."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if (text := self._line(line)) is not None:
                yield text

    def _line(self, raw: bytes) -> str | None:
        line = raw.strip()
        if not line.startswith(b"data:"):
            return None  # blank separators, ": keep-alive" comments, event names
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ModelError(f"unreadable line in the model's stream: {payload[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise ModelError(f"the model server failed mid-answer: {error_message(chunk)}")
        return self._chunk(chunk if isinstance(chunk, dict) else {})

    def _chunk(self, chunk: dict[str, Any]) -> str | None:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = usage.get("prompt_tokens", self.prompt_tokens)
            self.completion_tokens = usage.get("completion_tokens", self.completion_tokens)
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.stop_reason = _FINISH.get(str(choice["finish_reason"]), StopReason.END)
        content = (choice.get("delta") or {}).get("content")
        return content if isinstance(content, str) and content else None


def error_message(body: Any) -> str:
    """The human part of an OpenAI-style error body (or the body itself)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(body)[:300]


class OpenAIChatModel:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        api_key_loader: Callable[[], Awaitable[str]] | None = None,
        penalties: Mapping[str, float] | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._penalties = dict(penalties or {})
        self._model = model
        self._key = api_key
        self._key_loader = api_key_loader  # e.g. a Secrets Manager secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)
        self._session: aiohttp.ClientSession | None = None

    @property
    def family(self) -> str:
        return FAMILY

    @property
    def url(self) -> str:
        return f"{self._base}/chat/completions"

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        return self._stream(prompt, params)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        body = request_body(self._model, prompt, params, self._penalties)
        if self._key is None and self._key_loader is not None:
            self._key = await self._key_loader()
        try:
            response = await self._client().post(self.url, json=body, headers=self._headers())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ModelError(f"cannot reach the model server at {self.url}: {exc}") from exc
        parser, sent = SseParser(), 0
        try:
            if response.status != 200:
                raise await self._http_error(response)
            try:
                async for data in response.content.iter_any():
                    for text in parser.feed(data):
                        sent += 1
                        yield ModelToken(text)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise ModelError(
                    f"the stream from {self.url} broke after {sent} tokens: {exc!r}"
                ) from exc
        finally:
            response.close()  # on cancel too: the server stops generating
        if parser.stop_reason is None and not parser.done:
            raise ModelError(
                f"the stream from {self.url} ended after {sent} tokens without a finish"
            )
        yield ModelFinish(
            parser.stop_reason or StopReason.END,
            prompt_tokens=parser.prompt_tokens,
            completion_tokens=parser.completion_tokens or sent,
        )

    async def _http_error(self, response: aiohttp.ClientResponse) -> ModelError | ModelUnavailable:
        text = await response.text(errors="replace")
        try:
            detail = error_message(json.loads(text))
        except json.JSONDecodeError:
            detail = text[:300]
        status = response.status
        if status in THROTTLED:
            # Rate limited, overloaded or still loading the model: "try again",
            # which the client sees as model_unavailable (docs/protocol.md).
            wait = response.headers.get("Retry-After", "").strip()
            when = f"try again in {wait} s" if wait.isdigit() else "try again in a moment"
            return ModelUnavailable(f"{self.url} answered {status} ({detail}): {when}")
        if status in (401, 403):
            if self._key and self._key_loader is not None:
                fix = (
                    "the server rejected the key from Secrets Manager: set the right one with "
                    "`pulumi config set --secret rag:openaiApiKey KEY` and `pulumi up`"
                )
            elif self._key:
                fix = f"check {KEY_SETTING} (the server rejected the key)"
            else:
                fix = f"the server wants an API key: set {KEY_SETTING}"
            return ModelError(f"{self.url} answered {status} ({detail}); {fix}")
        if status == 404 or ("model" in detail.lower() and status in (400, 422)):
            known = await self._models()
            listing = f"; the server has: {', '.join(known)}" if known else ""
            return ModelError(
                f"{self.url} answered {status} for model {self._model!r} ({detail}){listing}; "
                "set RAG_MODEL__OPENAI_MODEL"
            )
        return ModelError(f"{self.url} answered {status}: {detail}")

    async def _models(self) -> list[str]:
        """The server's model ids, or [] if it doesn't list them."""
        try:
            async with self._client().get(f"{self._base}/models", headers=self._headers()) as r:
                if r.status != 200:
                    return []
                listing = await r.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, json.JSONDecodeError):
            return []
        data = listing.get("data") if isinstance(listing, dict) else None
        return [str(m["id"]) for m in data or [] if isinstance(m, dict) and "id" in m]


def from_settings(settings: Settings) -> OpenAIChatModel:
    model = settings.model
    if not model.openai_base_url or not model.openai_model:
        raise ConfigurationError(
            "RAG_MODEL__OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1) and "
            "RAG_MODEL__OPENAI_MODEL are required when RAG_MODEL__BACKEND=openai"
        )
    key = model.openai_api_key.get_secret_value() if model.openai_api_key else None
    loader = None
    if key is None and model.openai_api_key_secret_arn:
        from shared.adapters.aws.secrets import SecretString

        loader = SecretString.from_settings(model.openai_api_key_secret_arn, settings)
    penalties = {
        "frequency_penalty": model.openai_frequency_penalty,
        "presence_penalty": model.openai_presence_penalty,
    }
    return OpenAIChatModel(
        model.openai_base_url,
        model.openai_model,
        key,
        api_key_loader=loader,
        penalties={k: v for k, v in penalties.items() if v is not None},
    )
