"""Pure request builders and response interpreters for the OpenSearch vector index.

Nothing here does I/O, so every request the adapter sends (and every response
it reads) is unit-tested without a server. The adapter in
``shared.adapters.opensearch.index`` only sends these bodies.

Constraints of Amazon OpenSearch Serverless shape every builder: no
client-chosen ``_id`` (bulk actions carry none), no ``refresh``, no
``number_of_shards``/``replicas`` settings, and searches may lag writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.access import ACCESS_FIELD, Access, access_terms
from shared.documents import Chunk, EmbeddedChunk, SearchHit, Vector
from shared.errors import IndexWriteError
from shared.ports import Filters
from shared.settings import IndexSettings

VECTOR_FIELD = "vector"
# Fields returned with hits; the vector is large and never needed by callers.
SOURCE_EXCLUDES = [VECTOR_FIELD]
# Largest page OpenSearch returns without index.max_result_window changes.
MAX_PAGE = 10_000
# Distinct generations of one document are few (current + a crashed leftover or two).
MAX_GENERATIONS = 100


def build_index_body(dimension: int, settings: IndexSettings) -> dict[str, Any]:
    """The product's index: one knn_vector plus the chunk's fields and metadata."""
    parameters: dict[str, Any] = {"m": settings.hnsw_m, "ef_construction": settings.ef_construction}
    index_settings: dict[str, Any] = {"knn": True}
    if settings.collection_kind == "managed" and settings.refresh_s is not None:
        # The settle time is derived from this interval (shared.settings); on
        # AOSS the collection kind fixes it, so nothing is sent there.
        index_settings["refresh_interval"] = f"{round(settings.refresh_s * 1000)}ms"
    if settings.engine == "faiss":
        # faiss reads ef_search from the mapping; nmslib only from the index setting.
        parameters["ef_search"] = settings.ef_search
    else:
        index_settings["knn.algo_param.ef_search"] = settings.ef_search
    return {
        "settings": {"index": index_settings},
        "mappings": {
            "dynamic_templates": [
                # Metadata strings are exact-match filter values, not prose.
                {
                    "metadata_strings": {
                        "path_match": "metadata.*",
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024},
                    }
                },
                # An integer first seen must not make a later 1.5 fail or truncate.
                {
                    "metadata_numbers": {
                        "path_match": "metadata.*",
                        "match_mapping_type": "long",
                        "mapping": {"type": "double"},
                    }
                },
            ],
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {
                        "name": "hnsw",
                        "engine": settings.engine,
                        "space_type": settings.space_type,
                        "parameters": parameters,
                    },
                },
                "chunk_id": {"type": "keyword"},
                "doc_id": {"type": "keyword"},
                "generation": {"type": "keyword"},
                "ordinal": {"type": "integer"},
                "text": {"type": "text"},
                "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "start": {"type": "integer"},
                "end": {"type": "integer"},
                "embedded_end": {"type": "integer"},
                "page": {"type": "integer"},
                "section": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "source_uri": {"type": "keyword"},
                "metadata": {"type": "object", "dynamic": True},
                **ACCESS_PROPERTIES,
            },
        },
    }


# The access list as stored (``groups``) and the terms every search filters on
# (``access``, see shared.access): exact-match keywords.
ACCESS_PROPERTIES: dict[str, Any] = {
    ACCESS_FIELD: {"type": "keyword"},
    "groups": {"type": "keyword"},
}


def missing_access_mapping(mapping_response: dict[str, Any]) -> dict[str, Any] | None:
    """The put_mapping body an index made before access lists needs, else None.

    Without it the first chunk written with an ``access`` value would map the
    field dynamically as analysed text, where the ``terms`` filter on ``*``
    never matches.
    """
    for body in mapping_response.values():
        props = body.get("mappings", {}).get("properties", {})
        missing = {name: spec for name, spec in ACCESS_PROPERTIES.items() if name not in props}
        return {"properties": missing} if missing else None
    return None


def mapped_dimension(mapping_response: dict[str, Any], index: str) -> int | None:
    """The vector dimension of an existing index, from a get_mapping response."""
    for name, body in mapping_response.items():
        # The response may be keyed by a concrete index behind an alias.
        if name != index and len(mapping_response) > 1:
            continue
        props = body.get("mappings", {}).get("properties", {})
        dim = props.get(VECTOR_FIELD, {}).get("dimension")
        return int(dim) if dim is not None else None
    return None


def mapped_metadata_keys(mapping_response: dict[str, Any]) -> frozenset[str]:
    """The metadata keys an index has seen: the dynamic template maps each new
    ``metadata.<key>`` as documents bring it, so the mapping lists them all."""
    keys: set[str] = set()
    for body in mapping_response.values():
        props = body.get("mappings", {}).get("properties", {})
        keys.update(props.get("metadata", {}).get("properties", {}))
    return frozenset(keys)


def chunk_source(item: EmbeddedChunk) -> dict[str, Any]:
    source: dict[str, Any] = item.chunk.model_dump(mode="json")
    source[ACCESS_FIELD] = access_terms(item.chunk.groups)
    source[VECTOR_FIELD] = [float(x) for x in item.vector]
    return source


def build_bulk_actions(chunks: Sequence[EmbeddedChunk], index: str) -> list[dict[str, Any]]:
    """Index actions without ``_id``: AOSS vector collections assign ids themselves."""
    return [{"_op_type": "index", "_index": index, "_source": chunk_source(c)} for c in chunks]


def build_delete_actions(store_ids: Iterable[str], index: str) -> list[dict[str, Any]]:
    return [{"_op_type": "delete", "_index": index, "_id": i} for i in store_ids]


def build_filter(filters: Filters) -> list[dict[str, Any]]:
    """``{"team": "hr", "year": [2023, 2024]}`` → term/terms clauses on ``metadata.*``."""
    clauses: list[dict[str, Any]] = []
    for key, value in sorted(filters.items()):
        field = f"metadata.{key}"
        if isinstance(value, list):
            clauses.append({"terms": {field: value}})
        else:
            clauses.append({"term": {field: value}})
    return clauses


def build_access_filter(access: Access) -> list[dict[str, Any]]:
    """The mandatory access clause of every search (none when unrestricted).

    A chunk is in scope if it carries one of the caller's terms, or carries no
    terms at all (written before access lists existed: readable by everyone,
    as an absent list is). An explicit empty list is stored as a term no
    caller has, so it never falls into the second case.
    """
    if access.unrestricted:
        return []
    untagged = {"bool": {"must_not": [{"exists": {"field": ACCESS_FIELD}}]}}
    return [
        {
            "bool": {
                "should": [{"terms": {ACCESS_FIELD: access.terms()}}, untagged],
                "minimum_should_match": 1,
            }
        }
    ]


def build_search_filter(filters: Filters, access: Access) -> list[dict[str, Any]]:
    """Access AND the client's filters: ``bool.filter`` clauses all must hold, so
    no client filter can widen what the access clause allows."""
    return build_access_filter(access) + build_filter(filters)


def build_knn_query(vector: Vector, k: int, filters: Filters, access: Access) -> dict[str, Any]:
    """k-NN with efficient filtering: the filter sits inside the knn clause, so the
    engine returns k matching neighbours rather than k neighbours filtered after."""
    knn: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
    clauses = build_search_filter(filters, access)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    return {
        "size": k,
        "_source": {"excludes": SOURCE_EXCLUDES},
        "query": {"knn": {VECTOR_FIELD: knn}},
    }


KEYWORD_FIELDS = ["text", "title^2", "section^1.5"]


def build_keyword_query(
    text: str,
    k: int,
    filters: Filters,
    access: Access,
    expansion: Sequence[tuple[str, float]] = (),
) -> dict[str, Any]:
    """BM25 over chunk text (titles and sections count a little more). With an
    ``expansion`` (pseudo-relevance feedback's words and weights), each word
    is one more ``should`` clause boosted by its weight: a chunk's score is the
    question's BM25 plus weight x each added word's, as the embedded store's
    ``weighted_bm25``; a chunk matching only added words still qualifies."""
    question = {"multi_match": {"query": text, "fields": KEYWORD_FIELDS}}
    if not expansion:
        match: dict[str, Any] = {"must": [question]}
    else:
        added = [
            {"multi_match": {"query": word, "fields": KEYWORD_FIELDS, "boost": float(weight)}}
            for word, weight in expansion
        ]
        match = {"should": [question, *added], "minimum_should_match": 1}
    return {
        "size": k,
        "_source": {"excludes": SOURCE_EXCLUDES},
        "query": {"bool": {**match, "filter": build_search_filter(filters, access)}},
    }


def build_generations_query(doc_id: str) -> dict[str, Any]:
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"doc_id": doc_id}}]}},
        "aggs": {"generations": {"terms": {"field": "generation", "size": MAX_GENERATIONS}}},
    }


def parse_generations(response: dict[str, Any]) -> dict[str, int]:
    buckets = response.get("aggregations", {}).get("generations", {}).get("buckets", [])
    return {str(b["key"]): int(b["doc_count"]) for b in buckets}


DOC_IDS_PAGE = 1000


def build_doc_ids_query(after: dict[str, Any] | None = None) -> dict[str, Any]:
    """One page of distinct doc ids: a composite aggregation, paged by ``after_key``."""
    composite: dict[str, Any] = {
        "size": DOC_IDS_PAGE,
        "sources": [{"doc_id": {"terms": {"field": "doc_id"}}}],
    }
    if after is not None:
        composite["after"] = after
    return {"size": 0, "aggs": {"docs": {"composite": composite}}}


def parse_doc_ids_page(response: dict[str, Any]) -> tuple[list[str], dict[str, Any] | None]:
    """The page's doc ids and the key to continue after (None at the end)."""
    docs = response.get("aggregations", {}).get("docs", {})
    ids = [str(b["key"]["doc_id"]) for b in docs.get("buckets", [])]
    after = docs.get("after_key")
    return ids, (after if ids and len(ids) >= DOC_IDS_PAGE else None)


def build_ids_query(
    doc_id: str,
    keep_generation: str | None,
    page_size: int,
    search_after: list[Any] | None = None,
) -> dict[str, Any]:
    """One page of store ids of a document's chunks, for search-then-bulk-delete.

    Sorted by (generation, ordinal) so that ``search_after`` pages through
    without scroll or point-in-time, which AOSS does not offer everywhere.
    """
    query: dict[str, Any] = {"filter": [{"term": {"doc_id": doc_id}}]}
    if keep_generation is not None:
        query["must_not"] = [{"term": {"generation": keep_generation}}]
    body: dict[str, Any] = {
        "size": page_size,
        "_source": False,
        "query": {"bool": query},
        "sort": [{"generation": "asc"}, {"ordinal": "asc"}],
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def parse_ids_page(response: dict[str, Any]) -> tuple[list[str], list[Any] | None]:
    """Store ids of one page and the sort key to continue after (None at the end)."""
    hits = response.get("hits", {}).get("hits", [])
    ids = [str(h["_id"]) for h in hits]
    last = hits[-1].get("sort") if hits else None
    return ids, last


def relabelled_fields(groups: Sequence[str] | None) -> dict[str, Any]:
    return {"groups": None if groups is None else list(groups), ACCESS_FIELD: access_terms(groups)}


def build_relabel_actions(
    store_ids: Iterable[str], index: str, groups: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Partial updates by id: new access list and terms, the vector untouched.

    Self-managed OpenSearch only: AWS lists partial updates (``_update/<id>``)
    for *search* collections, not vector ones (see ``build_rewrite_actions``).
    """
    doc = relabelled_fields(groups)
    return [{"_op_type": "update", "_index": index, "_id": i, "doc": doc} for i in store_ids]


REWRITE_PAGE = 200


def build_chunks_page_query(
    doc_id: str, page_size: int, search_after: list[Any] | None = None
) -> dict[str, Any]:
    """One page of a document's chunks, whole (vector included), in a stable order."""
    body: dict[str, Any] = {
        "size": page_size,
        "query": {"bool": {"filter": [{"term": {"doc_id": doc_id}}]}},
        "sort": [{"generation": "asc"}, {"ordinal": "asc"}],
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def build_rewrite_actions(
    hits: Sequence[dict[str, Any]], index: str, groups: Sequence[str] | None
) -> list[dict[str, Any]]:
    """A re-label with operations AWS lists for vector collections: each chunk
    deleted by id and written again (no ``_id``) with the new access list, in
    one bulk so that one refresh shows both."""
    fields = relabelled_fields(groups)
    actions: list[dict[str, Any]] = []
    for hit in hits:
        actions.append({"_op_type": "delete", "_index": index, "_id": str(hit["_id"])})
        actions.append({"_op_type": "index", "_index": index, "_source": hit["_source"] | fields})
    return actions


def build_readable_query(doc_ids: Sequence[str], access: Access) -> dict[str, Any]:
    """Which of ``doc_ids`` have a chunk in the caller's scope (one aggregation)."""
    return {
        "size": 0,
        "query": {
            "bool": {"filter": [{"terms": {"doc_id": list(doc_ids)}}, *build_access_filter(access)]}
        },
        "aggs": {"docs": {"terms": {"field": "doc_id", "size": max(len(doc_ids), 1)}}},
    }


def parse_readable(response: dict[str, Any]) -> set[str]:
    buckets = response.get("aggregations", {}).get("docs", {}).get("buckets", [])
    return {str(b["key"]) for b in buckets if int(b.get("doc_count", 0)) > 0}


def has_hits(response: dict[str, Any]) -> bool:
    return bool(response.get("hits", {}).get("hits"))


def is_index_missing(error: Any) -> bool:
    """A 404's error type: the index is missing (not, say, a missing document)."""
    return "index_not_found_exception" in str(error)


def parse_hits(response: dict[str, Any], source: str) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for raw in response.get("hits", {}).get("hits", []):
        body = dict(raw.get("_source", {}))
        body.pop(VECTOR_FIELD, None)
        body.pop(ACCESS_FIELD, None)
        hits.append(
            SearchHit(
                chunk=Chunk.model_validate(body),
                score=float(raw.get("_score") or 0.0),
                store_id=str(raw.get("_id", "")),
                rank_sources=(source,),
            )
        )
    return hits


def bulk_failures(errors: Iterable[dict[str, Any]]) -> list[str]:
    """Reasons of the failed items of a bulk write (``async_bulk``'s error list).

    A delete of an id that is already gone (404) is not a failure: another
    worker or an earlier attempt removed it, which is what we wanted. Nor is a
    re-label (update) of a chunk that a newer generation replaced meanwhile.
    """
    failures: list[str] = []
    for item in errors:
        op, detail = next(iter(item.items()))
        if op in ("delete", "update") and detail.get("status") == 404:
            continue
        error = detail.get("error", detail)
        if isinstance(error, dict):
            error = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        failures.append(f"{op} {detail.get('_id', '?')} (status {detail.get('status')}): {error}")
    return failures


def check_bulk_errors(errors: Iterable[dict[str, Any]], what: str = "bulk") -> None:
    """Raise IndexWriteError naming every failed item; quiet when all succeeded."""
    failures = bulk_failures(errors)
    if failures:
        raise IndexWriteError(f"{len(failures)} {what} item(s) failed", failures)
