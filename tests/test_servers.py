"""The real servers behave as the product relies on.

OpenSearch: a k-NN index written the way Amazon OpenSearch Serverless allows
(bulk without client-chosen ``_id`` and without ``refresh``), found by k-NN
with an efficient metadata filter, and cleaned up by query. SQS: visibility
timeouts, receive counts and redrive to the dead-letter queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk

from tests.servers import SqsQueuePair

DIMENSION = 384
# Writes become searchable only after a refresh we may not ask for (AOSS
# rejects `refresh`); poll for them within this bound instead.
SEARCHABLE_WITHIN_S = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls `check` until it holds; fails after SEARCHABLE_WITHIN_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEARCHABLE_WITHIN_S
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"not within {SEARCHABLE_WITHIN_S} s: {what}")
        await asyncio.sleep(0.2)


def chunk_mapping(engine: str, space_type: str = "innerproduct") -> dict[str, Any]:
    """The shape of the product's chunk index (384-d MiniLM vectors)."""
    return {
        "settings": {"index": {"knn": True}},
        "mappings": {
            # Metadata values are filtered on exactly, so strings map to keyword.
            "dynamic_templates": [
                {
                    "metadata_strings": {
                        "path_match": "metadata.*",
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword"},
                    }
                }
            ],
            "properties": {
                "embedding": {
                    "type": "knn_vector",
                    "dimension": DIMENSION,
                    "method": {"name": "hnsw", "engine": engine, "space_type": space_type},
                },
                "text": {"type": "text"},
                "doc_id": {"type": "keyword"},
                "generation": {"type": "keyword"},
                "ordinal": {"type": "integer"},
                "metadata": {"type": "object"},
            },
        },
    }


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION))
    normalized: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalized


def chunks(vectors: np.ndarray) -> list[dict[str, Any]]:
    """Three chunks of a manual and two of an FAQ."""
    sources = ["manual", "manual", "manual", "faq", "faq"]
    doc_ids = ["doc-manual"] * 3 + ["doc-faq"] * 2
    ordinals = [0, 1, 2, 0, 1]
    return [
        {
            "embedding": vector.tolist(),
            "text": f"chunk {ordinal} of {doc_id}",
            "doc_id": doc_id,
            "generation": "g1",
            "ordinal": ordinal,
            "metadata": {"source": source, "lang": "en"},
        }
        for vector, source, doc_id, ordinal in zip(vectors, sources, doc_ids, ordinals, strict=True)
    ]


async def count(client: AsyncOpenSearch, index: str, query: dict[str, Any]) -> int:
    response = await client.count(index=index, body={"query": query})
    return int(response["count"])


async def knn_search(
    client: AsyncOpenSearch, index: str, vector: np.ndarray, metadata_filter: dict[str, Any]
) -> list[dict[str, Any]]:
    body = {
        "size": 3,
        "_source": {"excludes": ["embedding"]},
        "query": {
            "knn": {
                # `filter` inside the knn clause: efficient filtering, applied
                # during the graph search rather than after it.
                "embedding": {"vector": vector.tolist(), "k": 3, "filter": metadata_filter}
            }
        },
    }
    response = await client.search(index=index, body=body)
    hits: list[dict[str, Any]] = response["hits"]["hits"]
    return hits


async def delete_matching(client: AsyncOpenSearch, index: str, query: dict[str, Any]) -> int:
    """Delete by query the way AOSS allows: search for the ids, then bulk
    delete them (AOSS has no _delete_by_query)."""
    response = await client.search(
        index=index, body={"query": query, "size": 1000, "_source": False}
    )
    actions = [
        {"_op_type": "delete", "_index": index, "_id": hit["_id"]}
        for hit in response["hits"]["hits"]
    ]
    deleted, errors = await async_bulk(client, actions, raise_on_error=False)
    assert errors == []
    return deleted


@pytest.mark.opensearch
@pytest.mark.parametrize("space_type", ["innerproduct", "cosinesimil"])
async def test_knn_index_write_filtered_search_and_delete_by_query(
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    space_type: str,
) -> None:
    # GIVEN a k-NN index shaped like the product's, written in one bulk
    # request with server-chosen ids and no refresh
    index = opensearch_index_name
    await opensearch_client.indices.create(
        index=index, body=chunk_mapping(opensearch_knn_engine, space_type)
    )
    vectors = unit_vectors(5, seed=7)
    actions = [{"_index": index, "_source": chunk} for chunk in chunks(vectors)]
    written, errors = await async_bulk(opensearch_client, actions, raise_on_error=False)
    assert (written, errors) == (5, [])

    async def all_searchable() -> bool:
        return await count(opensearch_client, index, {"match_all": {}}) == 5

    await eventually(all_searchable, "the 5 chunks become searchable")

    # WHEN searching near a manual chunk, but only among FAQ chunks
    faq_only = {"term": {"metadata.source": "faq"}}
    hits = await knn_search(opensearch_client, index, vectors[0], faq_only)

    # THEN only the FAQ chunks come back
    assert sorted(hit["_source"]["ordinal"] for hit in hits) == [0, 1]
    assert {hit["_source"]["doc_id"] for hit in hits} == {"doc-faq"}

    # WHEN searching exactly at an FAQ chunk's vector
    hits = await knn_search(opensearch_client, index, vectors[4], faq_only)

    # THEN that chunk ranks first
    assert (hits[0]["_source"]["doc_id"], hits[0]["_source"]["ordinal"]) == ("doc-faq", 1)

    # WHEN the manual is deleted by query
    manual = {"term": {"doc_id": "doc-manual"}}
    assert await delete_matching(opensearch_client, index, manual) == 3

    # THEN its chunks disappear and the FAQ's stay
    async def manual_gone() -> bool:
        return await count(opensearch_client, index, manual) == 0

    await eventually(manual_gone, "the deleted chunks leave the index")
    assert await count(opensearch_client, index, {"term": {"doc_id": "doc-faq"}}) == 2


async def receive_one(sqs_client: Any, queue_url: str, visibility_timeout: int) -> dict[str, Any]:
    response = await sqs_client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=1,
        VisibilityTimeout=visibility_timeout,
        AttributeNames=["ApproximateReceiveCount"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages[0] if messages else {}


@pytest.mark.sqs
async def test_received_message_is_invisible_until_its_timeout_is_reset(
    sqs_client: Any, sqs_queue: SqsQueuePair
) -> None:
    # GIVEN a message received with a long visibility timeout
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody="doc-1")
    first = await receive_one(sqs_client, sqs_queue.url, visibility_timeout=600)
    assert first["Body"] == "doc-1"

    # THEN nobody else receives it meanwhile
    assert await receive_one(sqs_client, sqs_queue.url, visibility_timeout=600) == {}

    # WHEN its consumer gives it back (as a failed batch item is)
    await sqs_client.change_message_visibility(
        QueueUrl=sqs_queue.url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )

    # THEN it is delivered again, with its receive count raised
    again = await receive_one(sqs_client, sqs_queue.url, visibility_timeout=600)
    assert again["Body"] == "doc-1"
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.sqs
async def test_message_received_more_than_max_receive_count_lands_in_dlq(
    sqs_client: Any, sqs_queue: SqsQueuePair
) -> None:
    # GIVEN a message that every consumer fails on (never deleted; a zero
    # visibility timeout hands it straight back)
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody="poison")

    # WHEN it is received more often than the redrive policy allows
    receive_counts = []
    for _ in range(sqs_queue.max_receive_count + 2):
        message = await receive_one(sqs_client, sqs_queue.url, visibility_timeout=0)
        if message:
            receive_counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))

    # THEN it was delivered exactly max_receive_count times, then moved to the DLQ
    assert receive_counts == list(range(1, sqs_queue.max_receive_count + 1))
    dead = await receive_one(sqs_client, sqs_queue.dlq_url, visibility_timeout=600)
    assert dead["Body"] == "poison"
    assert await receive_one(sqs_client, sqs_queue.url, visibility_timeout=0) == {}
