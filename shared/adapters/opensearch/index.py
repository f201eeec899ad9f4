"""VectorIndex on OpenSearch: Amazon OpenSearch Serverless, managed or self-managed.

Thin async I/O around the pure builders of ``opensearch_requests``. Works
unchanged on AOSS: it never sets ``_id``, never refreshes, and deletes by
searching for store ids then bulk-deleting them (no delete_by_query).
Library errors are mapped to the product's error tree here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from opensearchpy import AsyncHttpConnection, AsyncOpenSearch
from opensearchpy import exceptions as os_errors
from opensearchpy.helpers import async_bulk

from shared.access import Access
from shared.adapters.opensearch import requests as req
from shared.documents import EmbeddedChunk, SearchHit, Vector
from shared.errors import (
    ConfigurationError,
    DimensionMismatch,
    IndexUnavailable,
    IndexWriteError,
    NoDocumentsIndexed,
    RagError,
)
from shared.ports import Filters
from shared.settings import IndexSettings, Settings

T = TypeVar("T")
log = logging.getLogger("shared.adapters.opensearch")
# Statuses worth retrying: throttling and server-side trouble.
_TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504}
_DELETE_PAGE = 1000


def map_error(exc: Exception, action: str) -> RagError:
    """An opensearch-py exception as the product's error (raise it ``from`` exc)."""
    if isinstance(exc, os_errors.ConnectionError | TimeoutError):
        return IndexUnavailable(f"OpenSearch unreachable while trying to {action}: {exc}")
    if isinstance(exc, os_errors.AuthenticationException | os_errors.AuthorizationException):
        return ConfigurationError(
            f"OpenSearch refused to {action} ({exc}); check RAG_INDEX__AUTH, the credentials "
            "and, on AOSS, the collection's data access policy"
        )
    if isinstance(exc, os_errors.TransportError):
        status = exc.status_code
        if not isinstance(status, int) or status in _TRANSIENT_STATUSES:
            return IndexUnavailable(f"OpenSearch failed to {action} (status {status}): {exc}")
        return ConfigurationError(f"OpenSearch rejected the request to {action}: {exc}")
    return IndexUnavailable(f"OpenSearch failed to {action}: {exc!r}")


def _is_already_exists(exc: os_errors.TransportError) -> bool:
    return "resource_already_exists_exception" in str(exc.error) or (
        "already exists" in str(exc.info)
    )


def _sigv4_auth(settings: Settings) -> Any:
    # Imported here so that deployments without SigV4 don't load botocore's session.
    import botocore.session
    from opensearchpy import AWSV4SignerAsyncAuth

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise ConfigurationError(
            "RAG_INDEX__AUTH=sigv4 but no AWS credentials were found (environment, profile "
            "or instance role)"
        )
    return AWSV4SignerAsyncAuth(credentials, settings.aws.region, settings.index.sigv4_service)


def build_client(settings: Settings) -> AsyncOpenSearch:
    index = settings.index
    url = index.opensearch_url
    if not url:
        raise ConfigurationError("RAG_INDEX__OPENSEARCH_URL is required for the OpenSearch index")
    auth: Any = None
    if index.auth == "basic":
        if not index.username or index.password is None:
            raise ConfigurationError(
                "RAG_INDEX__AUTH=basic needs RAG_INDEX__USERNAME and RAG_INDEX__PASSWORD"
            )
        auth = (index.username, index.password.get_secret_value())
    elif index.auth == "sigv4":
        auth = _sigv4_auth(settings)
    return AsyncOpenSearch(
        hosts=[url],
        http_auth=auth,
        use_ssl=url.startswith("https"),
        verify_certs=index.verify_certs,
        ssl_show_warn=False,
        connection_class=AsyncHttpConnection,
        timeout=index.request_timeout_s,
        max_retries=2,
        retry_on_timeout=True,
        maxsize=32,
    )


class OpenSearchVectorIndex:
    """The VectorIndex port on one OpenSearch index."""

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[Settings], AsyncOpenSearch] = build_client,
    ) -> None:
        self._settings = settings
        self._index_settings: IndexSettings = settings.index
        self._factory = client_factory
        self._client: AsyncOpenSearch | None = None
        self._ready_dimension: int | None = None
        # Partial updates by _id are listed for AOSS *search* collections only:
        # on AOSS re-labels rewrite chunks; on managed OpenSearch they update
        # in place until a refusal says otherwise.
        self._update_in_place = settings.index.collection_kind == "managed"

    @property
    def index_name(self) -> str:
        return self._index_settings.index_name

    def _os(self) -> AsyncOpenSearch:
        # Created on first use: building the adapter never touches the network.
        if self._client is None:
            self._client = self._factory(self._settings)
        return self._client

    async def _call(self, action: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (os_errors.OpenSearchException, OSError) as exc:  # OSError: TimeoutError too
            raise map_error(exc, action) from exc

    async def _search(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """A bookkeeping read (generations, ids, access, chunks to delete): an
        index not created yet holds nothing, so it answers empty, as the
        embedded store does (`rag ingest` reads before the indexer creates it)."""
        try:
            result: dict[str, Any] = await self._os().search(index=self.index_name, body=body)
        except os_errors.NotFoundError as exc:
            if req.is_index_missing(exc.error):
                return {}
            raise map_error(exc, action) from exc
        except (os_errors.OpenSearchException, OSError) as exc:  # OSError: TimeoutError too
            raise map_error(exc, action) from exc
        return result

    async def ensure_index(self, dimension: int) -> None:
        if self._ready_dimension == dimension:
            return
        existing = await self._existing_dimension()
        if existing is None:
            body = req.build_index_body(dimension, self._index_settings)
            try:
                await self._os().indices.create(index=self.index_name, body=body)
            except os_errors.RequestError as exc:
                # Another worker created it first: fine, as long as it matches.
                if not _is_already_exists(exc):
                    raise map_error(exc, "create the index") from exc
                existing = await self._existing_dimension()
            except os_errors.OpenSearchException as exc:
                raise map_error(exc, "create the index") from exc
        if existing is not None and existing != dimension:
            raise DimensionMismatch(
                f"index {self.index_name!r} stores {existing}-d vectors but the embedder makes "
                f"{dimension}-d ones; use another RAG_INDEX__INDEX_NAME or re-create the index"
            )
        self._ready_dimension = dimension

    async def _existing_dimension(self) -> int | None:
        try:
            mapping = await self._os().indices.get_mapping(index=self.index_name)
        except os_errors.NotFoundError:
            return None
        except os_errors.OpenSearchException as exc:
            raise map_error(exc, "read the index mapping") from exc
        upgrade = req.missing_access_mapping(mapping)
        if upgrade is not None:  # an index made before access lists existed
            await self._call(
                "add the access fields to the mapping",
                lambda: self._os().indices.put_mapping(index=self.index_name, body=upgrade),
            )
        dim = req.mapped_dimension(mapping, self.index_name)
        if dim is None:
            raise DimensionMismatch(f"index {self.index_name!r} exists without a vector field")
        return dim

    async def write(self, chunks: Sequence[EmbeddedChunk]) -> None:
        if chunks:
            await self._bulk(req.build_bulk_actions(chunks, self.index_name), "write chunks")

    async def _bulk(self, actions: list[dict[str, Any]], action: str) -> None:
        async def send() -> tuple[int, Any]:
            return await async_bulk(
                self._os(),
                actions,
                raise_on_error=False,
                max_retries=3,  # 429 items only, with backoff
                initial_backoff=1,
                max_backoff=8,
                chunk_size=500,
                # Under aiohttp's 1 MiB "large body" limit: a larger bytes body
                # blocks the event loop while it is sent (and aiohttp warns).
                # Chunks carrying small-to-big context made one page's write
                # (x509/reference.html, evalsets/cryptography) cross it.
                max_chunk_bytes=1000 * 1000,
            )

        _ok, errors = await self._call(action, send)
        req.check_bulk_errors(errors, action)

    async def generations(self, doc_id: str) -> dict[str, int]:
        response = await self._search("count generations", req.build_generations_query(doc_id))
        return req.parse_generations(response)

    async def doc_ids(self) -> list[str]:
        found: list[str] = []
        after: dict[str, Any] | None = None
        while True:
            response = await self._search("list documents", req.build_doc_ids_query(after))
            ids, after = req.parse_doc_ids_page(response)
            found += ids
            if after is None:
                return found

    async def chunk_ids(self, doc_id: str, except_generation: str | None = None) -> list[str]:
        found: list[str] = []
        async for ids in self._store_id_pages(doc_id, except_generation):
            found += ids
        return found

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        for first in range(0, len(store_ids), _DELETE_PAGE):
            page = store_ids[first : first + _DELETE_PAGE]
            await self._bulk(req.build_delete_actions(page, self.index_name), "delete chunks")
        return len(store_ids)

    async def set_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        """Re-label a document's chunks. The rewrite makes new copies, which
        searches see only after the refresh interval, like any write."""
        if self._update_in_place:
            try:
                return await self._update_groups(doc_id, groups)
            except (ConfigurationError, IndexWriteError) as exc:
                # A store that refuses partial updates (an AOSS vector
                # collection): rewrite instead, from now on.
                log.warning(
                    "partial updates refused; re-labelling by rewrite",
                    extra={"fields": {"doc_id": doc_id, "error": str(exc)[:500]}},
                )
                self._update_in_place = False
        return await self._rewrite_groups(doc_id, groups)

    async def _update_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        relabelled = 0
        async for ids in self._store_id_pages(doc_id, None):
            actions = req.build_relabel_actions(ids, self.index_name, groups)
            await self._bulk(actions, "re-label chunks")
            relabelled += len(ids)
        return relabelled

    async def _rewrite_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        # Paged on (generation, ordinal): a page's new copies sort at or before
        # the page's last key, so search_after never hands them back.
        relabelled = 0
        search_after: list[Any] | None = None
        while True:
            body = req.build_chunks_page_query(doc_id, req.REWRITE_PAGE, search_after)
            hits = (await self._search("read chunks to re-label", body))["hits"]["hits"]
            if hits:
                actions = req.build_rewrite_actions(hits, self.index_name, groups)
                await self._bulk(actions, "re-label chunks")
                relabelled += len(hits)
            search_after = hits[-1].get("sort") if hits else None
            if len(hits) < req.REWRITE_PAGE or search_after is None:
                return relabelled

    async def metadata_keys(self) -> frozenset[str]:
        try:
            mapping = await self._os().indices.get_mapping(index=self.index_name)
        except os_errors.NotFoundError:
            return frozenset()
        except os_errors.OpenSearchException as exc:
            raise map_error(exc, "read the index mapping") from exc
        return req.mapped_metadata_keys(mapping)

    async def readable(self, doc_ids: Sequence[str], access: Access) -> set[str]:
        if not doc_ids:
            return set()
        body = req.build_readable_query(doc_ids, access)
        return req.parse_readable(await self._search("check document access", body))

    async def _store_id_pages(
        self, doc_id: str, keep_generation: str | None
    ) -> AsyncIterator[list[str]]:
        # search_after is keyed on (generation, ordinal) values, so a page
        # changed before the next is fetched cannot make the paging skip chunks.
        search_after: list[Any] | None = None
        while True:
            body = req.build_ids_query(doc_id, keep_generation, _DELETE_PAGE, search_after)
            response = await self._search("list chunk ids", body)
            ids, search_after = req.parse_ids_page(response)
            if ids:
                yield ids
            if len(ids) < _DELETE_PAGE or search_after is None:
                return

    async def knn_search(
        self, vector: Vector, k: int, filters: Filters, access: Access
    ) -> list[SearchHit]:
        body = req.build_knn_query(vector, k, filters, access)
        return await self._hits("search by vector", body, "knn")

    async def keyword_search(
        self,
        text: str,
        k: int,
        filters: Filters,
        access: Access,
        expansion: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        body = req.build_keyword_query(text, k, filters, access, expansion)
        return await self._hits("search by keywords", body, "keyword")

    async def _hits(self, action: str, body: dict[str, Any], kind: str) -> list[SearchHit]:
        """A client's search: before the first document it says so, not "404".

        The index is created by the indexer's first start; until then, and
        while it holds no chunk, the answer is NoDocumentsIndexed.
        """
        try:
            response: dict[str, Any] = await self._os().search(index=self.index_name, body=body)
        except os_errors.NotFoundError as exc:
            if req.is_index_missing(exc.error):
                raise NoDocumentsIndexed(f"index {self.index_name!r} does not exist yet") from exc
            raise map_error(exc, action) from exc
        except (os_errors.OpenSearchException, OSError) as exc:
            raise map_error(exc, action) from exc
        if not req.has_hits(response) and await self._is_empty():
            raise NoDocumentsIndexed(f"index {self.index_name!r} holds no documents yet")
        return req.parse_hits(response, kind)

    async def _is_empty(self) -> bool:
        """Only asked when a search found nothing (a filter may explain that)."""
        try:
            counted = await self._os().count(index=self.index_name)
        except (os_errors.OpenSearchException, OSError):
            return False  # unknown: let the empty result stand
        return int(counted.get("count", 1)) == 0

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def from_settings(settings: Settings) -> OpenSearchVectorIndex:
    return OpenSearchVectorIndex(settings)
