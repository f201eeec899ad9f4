"""The OpenSearch adapter's pure builders and interpreters."""

from __future__ import annotations

import numpy as np
import pytest

from shared.access import Access
from shared.adapters.opensearch import requests as req
from shared.documents import Chunk, EmbeddedChunk
from shared.errors import IndexWriteError
from shared.settings import IndexSettings

ALL = Access.everything()


def _chunk(ordinal: int = 0, **fields: object) -> EmbeddedChunk:
    chunk = Chunk(
        chunk_id=f"c{ordinal}",
        doc_id="d",
        generation="g1",
        ordinal=ordinal,
        text="hello",
        start=0,
        end=5,
        metadata={"team": "hr"},
        **fields,
    )
    return EmbeddedChunk(chunk, np.array([0.5, -0.5], dtype=np.float32))


def test_index_body_maps_the_vector_with_the_configured_method() -> None:
    body = req.build_index_body(384, IndexSettings(engine="faiss", space_type="innerproduct"))
    vector = body["mappings"]["properties"]["vector"]
    assert vector["dimension"] == 384
    assert vector["method"]["engine"] == "faiss"
    assert vector["method"]["space_type"] == "innerproduct"
    assert vector["method"]["parameters"]["ef_search"] == 128
    # AOSS rejects shard and replica settings
    assert set(body["settings"]["index"]) == {"knn"}


def test_index_body_sets_ef_search_per_index_for_other_engines() -> None:
    body = req.build_index_body(8, IndexSettings(engine="lucene", ef_search=64))
    assert body["settings"]["index"]["knn.algo_param.ef_search"] == 64
    assert "ef_search" not in body["mappings"]["properties"]["vector"]["method"]["parameters"]


def test_index_body_maps_metadata_strings_as_keywords() -> None:
    body = req.build_index_body(8, IndexSettings())
    templates = {
        next(iter(t)): next(iter(t.values())) for t in body["mappings"]["dynamic_templates"]
    }
    assert templates["metadata_strings"]["mapping"]["type"] == "keyword"
    assert templates["metadata_strings"]["path_match"] == "metadata.*"
    props = body["mappings"]["properties"]
    assert props["doc_id"]["type"] == props["generation"]["type"] == "keyword"
    assert props["ordinal"]["type"] == "integer"


def test_bulk_actions_never_choose_an_id() -> None:
    actions = req.build_bulk_actions([_chunk(0), _chunk(1)], "idx")
    assert all("_id" not in a for a in actions)
    assert [a["_source"]["ordinal"] for a in actions] == [0, 1]
    assert actions[0]["_source"]["vector"] == [0.5, -0.5]
    assert actions[0]["_index"] == "idx" and actions[0]["_op_type"] == "index"


def test_delete_actions_use_the_store_ids() -> None:
    assert req.build_delete_actions(["a"], "idx") == [
        {"_op_type": "delete", "_index": "idx", "_id": "a"}
    ]


def test_filter_on_metadata_fields() -> None:
    assert req.build_filter({"team": "hr", "year": [2023, 2024]}) == [
        {"term": {"metadata.team": "hr"}},
        {"terms": {"metadata.year": [2023, 2024]}},
    ]


def test_knn_query_filters_inside_the_knn_clause() -> None:
    query = req.build_knn_query(np.array([1.0, 0.0], dtype=np.float32), 5, {"team": "hr"}, ALL)
    knn = query["query"]["knn"]["vector"]
    assert knn["k"] == 5 and knn["vector"] == [1.0, 0.0]
    assert knn["filter"] == {"bool": {"filter": [{"term": {"metadata.team": "hr"}}]}}
    assert query["size"] == 5
    assert query["_source"]["excludes"] == ["vector"]


def test_knn_query_without_filters_has_no_filter() -> None:
    query = req.build_knn_query(np.zeros(2, dtype=np.float32), 3, {}, ALL)
    assert "filter" not in query["query"]["knn"]["vector"]


def test_keyword_query_matches_text_and_filters() -> None:
    query = req.build_keyword_query("leave policy", 4, {"team": "hr"}, ALL)
    must = query["query"]["bool"]["must"][0]["multi_match"]
    assert must["query"] == "leave policy" and "text" in must["fields"]
    assert query["query"]["bool"]["filter"] == [{"term": {"metadata.team": "hr"}}]


def test_keyword_expansion_adds_one_boosted_should_clause_per_word() -> None:
    query = req.build_keyword_query("leave policy", 4, {"team": "hr"}, ALL, [("pto", 0.4)])
    bool_query = query["query"]["bool"]
    question, added = bool_query["should"]
    assert question["multi_match"]["query"] == "leave policy"
    assert "boost" not in question["multi_match"]
    assert added["multi_match"] == {"query": "pto", "fields": req.KEYWORD_FIELDS, "boost": 0.4}
    # A chunk with only an added word matches; filters still bind every hit.
    assert bool_query["minimum_should_match"] == 1 and "must" not in bool_query
    assert bool_query["filter"] == [{"term": {"metadata.team": "hr"}}]


def test_generations_come_from_a_terms_aggregation() -> None:
    query = req.build_generations_query("d")
    assert query["size"] == 0
    assert query["query"]["bool"]["filter"] == [{"term": {"doc_id": "d"}}]
    response = {"aggregations": {"generations": {"buckets": [{"key": "g1", "doc_count": 3}]}}}
    assert req.parse_generations(response) == {"g1": 3}
    assert req.parse_generations({}) == {}


def test_ids_query_pages_with_search_after_and_keeps_a_generation() -> None:
    query = req.build_ids_query("d", "g2", 100, ["g1", 7])
    assert query["query"]["bool"]["must_not"] == [{"term": {"generation": "g2"}}]
    assert query["search_after"] == ["g1", 7]
    assert query["_source"] is False
    everything = req.build_ids_query("d", None, 100)
    assert "must_not" not in everything["query"]["bool"]
    assert "search_after" not in everything


def test_ids_page_returns_the_last_sort_key() -> None:
    response = {"hits": {"hits": [{"_id": "a", "sort": ["g", 0]}, {"_id": "b", "sort": ["g", 1]}]}}
    assert req.parse_ids_page(response) == (["a", "b"], ["g", 1])
    assert req.parse_ids_page({"hits": {"hits": []}}) == ([], None)


def test_hits_become_chunks_without_vectors() -> None:
    source = req.chunk_source(_chunk(3))
    response = {"hits": {"hits": [{"_id": "x", "_score": 1.5, "_source": source}]}}
    [hit] = req.parse_hits(response, "knn")
    assert hit.chunk.ordinal == 3 and hit.score == 1.5 and hit.store_id == "x"
    assert hit.rank_sources == ("knn",)


def test_mapped_dimension_reads_an_existing_mapping() -> None:
    mapping = {"idx": {"mappings": {"properties": {"vector": {"dimension": 384}}}}}
    assert req.mapped_dimension(mapping, "idx") == 384
    assert req.mapped_dimension({"idx": {"mappings": {}}}, "idx") is None


def test_bulk_errors_name_each_failed_item() -> None:
    errors = [
        {
            "index": {
                "_id": "1",
                "status": 400,
                "error": {"type": "mapper_parsing_exception", "reason": "bad"},
            }
        },
        {"delete": {"_id": "2", "status": 404, "result": "not_found"}},
    ]
    with pytest.raises(IndexWriteError) as caught:
        req.check_bulk_errors(errors, "write chunks")
    assert caught.value.failures == ["index 1 (status 400): mapper_parsing_exception: bad"]


def test_bulk_errors_ignore_deletes_of_ids_already_gone() -> None:
    assert req.bulk_failures([{"delete": {"_id": "2", "status": 404}}]) == []
    assert req.bulk_failures([]) == []
    # but a 404 on a write is a failure, and so is a delete refused otherwise
    assert req.bulk_failures(
        [{"index": {"_id": "3", "status": 404}}, {"delete": {"_id": "4", "status": 409}}]
    ) == ["index 3 (status 404): error: ", "delete 4 (status 409): error: "]


def test_doc_ids_are_paged_by_a_composite_aggregation() -> None:
    from shared.adapters.opensearch.requests import (
        DOC_IDS_PAGE,
        build_doc_ids_query,
        parse_doc_ids_page,
    )

    first = build_doc_ids_query()
    assert first["size"] == 0 and "after" not in first["aggs"]["docs"]["composite"]
    later = build_doc_ids_query({"doc_id": "m.md"})
    assert later["aggs"]["docs"]["composite"]["after"] == {"doc_id": "m.md"}
    full = {
        "aggregations": {
            "docs": {
                "buckets": [{"key": {"doc_id": f"d{i}"}} for i in range(DOC_IDS_PAGE)],
                "after_key": {"doc_id": "last"},
            }
        }
    }
    ids, after = parse_doc_ids_page(full)
    assert len(ids) == DOC_IDS_PAGE and after == {"doc_id": "last"}
    short = {"aggregations": {"docs": {"buckets": [{"key": {"doc_id": "z"}}], "after_key": {}}}}
    assert parse_doc_ids_page(short) == (["z"], None)
    assert parse_doc_ids_page({}) == ([], None)


# ---- access lists ---------------------------------------------------------------

HR = Access.of({"hr", "staff"})
ACCESS_CLAUSE = {
    "bool": {
        "should": [
            {"terms": {"access": ["*", "hr", "staff"]}},
            {"bool": {"must_not": [{"exists": {"field": "access"}}]}},
        ],
        "minimum_should_match": 1,
    }
}


def test_the_access_clause_sits_inside_the_knn_clause_anded_with_filters() -> None:
    query = req.build_knn_query(np.array([1.0, 0.0], dtype=np.float32), 5, {"team": "it"}, HR)
    knn = query["query"]["knn"]["vector"]
    # Efficient filtering: inside the knn clause, never a post_filter or an outer bool.
    assert knn["filter"] == {"bool": {"filter": [ACCESS_CLAUSE, {"term": {"metadata.team": "it"}}]}}
    assert set(query) == {"size", "_source", "query"}
    alone = req.build_knn_query(np.zeros(2, dtype=np.float32), 3, {}, HR)
    assert alone["query"]["knn"]["vector"]["filter"] == {"bool": {"filter": [ACCESS_CLAUSE]}}


def test_the_access_clause_is_in_the_bm25_query_too() -> None:
    query = req.build_keyword_query("leave", 4, {"team": "hr"}, HR)
    assert query["query"]["bool"]["filter"] == [ACCESS_CLAUSE, {"term": {"metadata.team": "hr"}}]


def test_an_unrestricted_search_has_no_access_clause() -> None:
    assert req.build_access_filter(ALL) == []
    assert req.build_access_filter(Access.of(set())) == [
        {
            "bool": {
                "should": [
                    {"terms": {"access": ["*"]}},
                    {"bool": {"must_not": [{"exists": {"field": "access"}}]}},
                ],
                "minimum_should_match": 1,
            }
        }
    ]


def test_chunks_carry_their_access_terms_and_hits_drop_them() -> None:
    for groups, terms in ((None, ["*"]), ([], ["~"]), (["hr", "a"], ["a", "hr"])):
        chunk = _chunk(0).chunk.model_copy(update={"groups": groups})
        source = req.chunk_source(EmbeddedChunk(chunk, np.zeros(2, dtype=np.float32)))
        assert source["access"] == terms and source["groups"] == groups
        [hit] = req.parse_hits({"hits": {"hits": [{"_id": "x", "_source": source}]}}, "knn")
        assert hit.chunk.groups == groups


def test_relabel_is_a_partial_update_by_id_without_the_vector() -> None:
    actions = req.build_relabel_actions(["a", "b"], "idx", ["hr"])
    assert actions[0] == {
        "_op_type": "update",
        "_index": "idx",
        "_id": "a",
        "doc": {"groups": ["hr"], "access": ["hr"]},
    }
    assert req.build_relabel_actions(["a"], "idx", None)[0]["doc"] == {
        "groups": None,
        "access": ["*"],
    }
    # A chunk replaced by a newer generation meanwhile (404) is not a failure.
    assert req.bulk_failures([{"update": {"_id": "a", "status": 404}}]) == []


def test_readable_documents_come_from_one_aggregation() -> None:
    query = req.build_readable_query(["a", "b"], HR)
    assert query["size"] == 0
    assert query["query"]["bool"]["filter"] == [{"terms": {"doc_id": ["a", "b"]}}, ACCESS_CLAUSE]
    response = {"aggregations": {"docs": {"buckets": [{"key": "a", "doc_count": 2}]}}}
    assert req.parse_readable(response) == {"a"}


def test_an_index_made_before_access_lists_gets_the_fields_mapped() -> None:
    old = req.build_index_body(8, IndexSettings())
    for name in ("access", "groups"):
        del old["mappings"]["properties"][name]
    assert req.missing_access_mapping({"idx": {"mappings": old["mappings"]}}) == {
        "properties": {"access": {"type": "keyword"}, "groups": {"type": "keyword"}}
    }
    current = req.build_index_body(8, IndexSettings())
    assert req.missing_access_mapping({"idx": {"mappings": current["mappings"]}}) is None
