"""Build adapters from settings. Imports are lazy so that a Lambda only loads
the adapters its configuration selects (no apsw or llama.cpp in AWS).

Each adapter module exposes ``from_settings(settings)``; names are relative to
``shared.adapters`` (one package per backend).
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from shared.ports import (
    BlobStore,
    ChatModel,
    DeadLetters,
    Embedder,
    Queue,
    StatusStore,
    TokenCounter,
    VectorIndex,
)
from shared.settings import Settings


def _build(module: str, settings: Settings) -> Any:
    return importlib.import_module(f"shared.adapters.{module}").from_settings(settings)


def build_vector_index(settings: Settings) -> VectorIndex:
    name = {"embedded": "sqlite.store", "opensearch": "opensearch.index"}[settings.index.backend]
    return cast(VectorIndex, _build(name, settings))


def build_status_store(settings: Settings) -> StatusStore:
    name = {"embedded": "sqlite.status", "dynamodb": "aws.dynamodb_status"}[settings.status.backend]
    return cast(StatusStore, _build(name, settings))


def build_embedder(settings: Settings) -> Embedder:
    name = {
        "minilm": "local_models.minilm",
        "sagemaker": "aws.sagemaker_embedder",
        "bedrock": "aws.bedrock_embedder",
    }[settings.embedder.backend]
    return cast(Embedder, _build(name, settings))


def build_chat_model(settings: Settings) -> ChatModel:
    name = {
        "local": "local_models.llamacpp",
        "sagemaker": "aws.sagemaker_chat",
        "bedrock": "aws.bedrock_chat",
        "openai": "openai_compatible.chat",
    }[settings.model.backend]
    return cast(ChatModel, _build(name, settings))


def build_queue(settings: Settings) -> Queue:
    name = {"embedded": "sqlite.queue", "sqs": "aws.sqs"}[settings.queue.backend]
    return cast(Queue, _build(name, settings))


def build_dead_letters(settings: Settings) -> DeadLetters | None:
    """Where the indexer puts poison messages: the SQS dead-letter queue when
    ``RAG_QUEUE__DLQ_URL`` is set, the embedded queue's dead-letter table in
    local mode; None leaves them to the queue's own redrive policy."""
    if settings.queue.dlq_url:
        module = "aws.sqs"
    elif settings.queue.backend == "embedded":
        module = "sqlite.queue"
    else:
        return None
    adapters = importlib.import_module(f"shared.adapters.{module}")
    return cast(DeadLetters, adapters.dead_letters_from_settings(settings))


def build_blob_store(settings: Settings) -> BlobStore:
    return cast(BlobStore, _build("aws.s3", settings))


def build_token_counter() -> TokenCounter:
    """all-MiniLM-L6-v2's WordPiece tokenizer (chunk sizes are in its tokens)."""
    from shared.adapters.local_models.wordpiece import default_token_counter

    return default_token_counter()
