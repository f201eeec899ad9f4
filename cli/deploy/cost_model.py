"""What a stack costs, from its config alone: idle per day, per 1,000 questions,
per 10,000 documents indexed (``rag cost``, docs/cost.md).

Pure: a resolved :class:`~infra.config.StackConfig`, the list prices
(``cli/deploy/cost_prices.json``, dated) and the usage assumptions (:class:`Usage`, each
one written down) in; :class:`Estimate` lines out. No AWS call.

Where AWS leaves a figure open, the model takes the expensive side (free tiers
ignored, one answer at a time per model instance, the longest documented wake).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.settings import ChunkingSettings

PRICES_FILE = Path(__file__).with_name("cost_prices.json")
HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30.4
MB_PER_VCPU = 1769  # Lambda: one vCPU per 1,769 MB of memory

# AWS, "Scale to zero for Amazon OpenSearch Serverless": idle 10 minutes before
# scaling to zero; waking provisions two search workers / one indexing worker.
AOSS_IDLE_MIN = 10
AOSS_WAKE_SEARCH_OCU = 2.0
AOSS_WAKE_INDEXING_OCU = 1.0
# A model copy: scale-in needs ~15 minutes of idle datapoints (Application Auto
# Scaling's AlarmLow), then the instance goes ~12 minutes later (measured by others,
# docs/cost.md); the wake itself takes 5-10 minutes.
MODEL_BILLED_PER_WAKE_MIN = 30
MODEL_WAKE_MIN = (5, 10)
AOSS_WAKE_S = (10, 30)


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


@dataclass(frozen=True)
class Usage:
    """The assumptions behind the per-question and per-document figures."""

    # Llama 2 7B on one A10G (TGI, one stream): ~30 tokens/s; 256-token answers.
    answer_tokens: int = 256
    tokens_per_s: float = 30.0
    prefill_s: float = 0.5
    # None: answer_tokens / tokens_per_s + prefill_s. Give the mean of done.model_ms
    # from a real stack (rag cost --model-seconds) to price what you measured.
    model_seconds: float | None = None
    # The query function: the $default route's invocation, then the worker's
    # retrieval + prompt before the model and attribution after it.
    front_s: float = 0.15
    worker_overhead_s: float = 1.8
    authorizer_s: float = 0.2  # one $connect per question (the worst case)
    coalesce_s: float = 0.05  # token frames: one per 50 ms at most
    state_writes: int = 6  # DynamoDB: run claim/release, conversation, worker claim
    state_reads: int = 4
    # Documents: ~8 KB of text each, ~4 characters per token.
    doc_kb: float = 8.0
    chars_per_token: float = 4.0
    chunk_tokens: int = ChunkingSettings.model_fields["chunk_tokens"].default
    overlap_tokens: int = ChunkingSettings.model_fields["overlap_tokens"].default
    # Indexer end-to-end chunks/s per function at 1 and 2 vCPU (bench/scaling.py,
    # docs/scaling.md): 1,000 / 78.7 CPU ms per chunk measured at 1 vCPU (the wall
    # rate on this shared machine was 4.2). The 2-vCPU run on busy cores was slower
    # (threads waiting on each other): no gain is assumed from a second vCPU.
    chunks_per_s_1vcpu: float = 12.7
    chunks_per_s_2vcpu: float = 12.7
    sqs_requests_per_doc: float = 3.0  # send, receive, delete (batching only lowers it)
    status_writes_per_doc: int = 4  # lease, progress, generation, done
    status_reads_per_doc: int = 2
    # Stored per chunk: 384 float32 (1,536 B) + HNSW links (~128 B at M=16) + text
    # (~900 B) + metadata (~400 B).
    bytes_per_chunk: int = 2964
    # Idle: Lambda's SQS pollers (assumed 5 per event source, 20 s long polls).
    pollers_per_event_source: int = 5

    @property
    def model_s(self) -> float:
        if self.model_seconds is not None:
            return self.model_seconds
        return self.answer_tokens / self.tokens_per_s + self.prefill_s

    @property
    def chunks_per_doc(self) -> int:
        tokens = self.doc_kb * 1024 / self.chars_per_token
        stride = self.chunk_tokens - self.overlap_tokens
        return max(1, math.ceil((tokens - self.overlap_tokens) / stride))

    def indexer_rate(self, vcpu: float) -> float:
        """Chunks/s of one indexer function with ``vcpu`` (linear between the two
        measured points, flat beyond them: the embedder uses at most 2 threads well)."""
        one, two = self.chunks_per_s_1vcpu, self.chunks_per_s_2vcpu
        if vcpu <= 1:
            return one * vcpu
        return one + (two - one) * (min(vcpu, 2.0) - 1)


@dataclass(frozen=True)
class Line:
    part: str
    detail: str
    usd: float


@dataclass
class Section:
    title: str
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def add(self, part: str, detail: str, usd: float) -> None:
        self.lines.append(Line(part, detail, usd))


@dataclass
class Estimate:
    stack: str
    prices_as_of: str
    region: str
    idle_per_day: Section
    per_1000_questions: Section
    per_10000_documents: Section
    storage_per_month: Section
    awake: Section
    waking: dict[str, str]
    usage: Usage
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def section(s: Section) -> dict[str, Any]:
            return {
                "total_usd": round(s.total, 4),
                "lines": [
                    {"part": x.part, "detail": x.detail, "usd": round(x.usd, 4)} for x in s.lines
                ],
            }

        return {
            "stack": self.stack,
            "region": self.region,
            "prices_as_of": self.prices_as_of,
            "idle_usd_per_day": round(self.idle_per_day.total, 4),
            "per_1000_questions_usd": round(self.per_1000_questions.total, 4),
            "per_10000_documents_usd": round(self.per_10000_documents.total, 4),
            "storage_per_10000_documents_usd_per_month": round(self.storage_per_month.total, 4),
            "idle_per_day": section(self.idle_per_day),
            "per_1000_questions": section(self.per_1000_questions),
            "per_10000_documents": section(self.per_10000_documents),
            "storage_per_month": section(self.storage_per_month),
            "awake_per_hour": section(self.awake),
            "waking": self.waking,
            "usage": asdict(self.usage) | {"model_seconds_used": self.usage.model_s},
            "notes": self.notes,
        }


def runs_per_day(schedule: str | None) -> float:
    """EventBridge runs a day: rate(N unit) exactly; a cron is taken as hourly (worst)."""
    if not schedule:
        return 0.0
    match = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", schedule)
    if not match:
        return 24.0
    n, unit = int(match.group(1)), match.group(2).rstrip("s")
    return {"minute": 1440.0, "hour": 24.0, "day": 1.0}[unit] / n


def instance_price(prices: dict[str, Any], instance: str) -> float | None:
    price = prices["sagemaker_instance_hour"].get(instance)
    return float(price) if price is not None else None


def estimate(
    config: Any, stack: str, prices: dict[str, Any], usage: Usage, alarms: int
) -> Estimate:
    """``config``: a StackConfig already resolved for ``stack`` (resolved_for)."""
    est = Estimate(
        stack=stack,
        prices_as_of=prices["as_of"],
        region=prices["region"],
        idle_per_day=Section("idle per day"),
        per_1000_questions=Section("per 1,000 questions"),
        per_10000_documents=Section("per 10,000 documents indexed"),
        storage_per_month=Section("storage of 10,000 documents, per month"),
        awake=Section("awake, per hour"),
        waking={},
        usage=usage,
    )
    if config.region != prices["region"]:
        est.notes.append(
            f"the stack is in {config.region}; these are {prices['region']} list prices"
        )
    _idle(est, config, prices, usage, alarms)
    _questions(est, config, prices, usage)
    _documents(est, config, prices, usage)
    return est


def _ocu(prices: dict[str, Any]) -> float:
    return float(prices["opensearch_serverless"]["ocu_hour"])


def _idle(est: Estimate, config: Any, prices: dict[str, Any], usage: Usage, alarms: int) -> None:
    search, model, idle = config.search, config.model, est.idle_per_day
    ocu = _ocu(prices)
    if search.kind == "classic":
        floor = 1.0 * (2 if search.standby_replicas else 1)  # 0.5 indexing + 0.5 search
        idle.add(
            "search",
            f"classic collection, always on: {floor:g} OCU minimum",
            floor * ocu * HOURS_PER_DAY,
        )
    else:
        floor = (search.min_indexing_ocu + search.min_search_ocu) * (
            2
            if search.standby_replicas and (search.min_indexing_ocu or search.min_search_ocu)
            else 1
        )
        idle.add(
            "search",
            f"NextGen collection group, minimum {floor:g} OCU"
            + (" (scales to zero after 10 idle minutes)" if floor == 0 else ""),
            floor * ocu * HOURS_PER_DAY,
        )
        est.waking["search"] = (
            f"first search after {AOSS_IDLE_MIN} idle minutes waits {AOSS_WAKE_S[0]}-"
            f"{AOSS_WAKE_S[1]} s (the client gets a status event)"
        )
    runs = runs_per_day(config.indexer.reconcile_schedule)
    if runs and search.scales_to_zero:
        # Each run searches the collection: awake for at least the idle period.
        wake = AOSS_WAKE_SEARCH_OCU * (AOSS_IDLE_MIN + 1) / 60 * ocu
        idle.add(
            "reconcile",
            f"{runs:g} run(s)/day ({config.indexer.reconcile_schedule}), each wakes the "
            f"collection: {AOSS_WAKE_SEARCH_OCU:g} OCU x {AOSS_IDLE_MIN + 1} min",
            runs * wake,
        )
    lam = prices["lambda"]
    gb_s = lam["gb_second"][config.lambda_.architecture]
    if runs:
        idle.add(
            "reconcile function",
            f"{runs:g} x ~10 s at {config.indexer.memory_mb} MB",
            runs * (10 * config.indexer.memory_mb / 1024 * gb_s + lam["million_requests"] / 1e6),
        )
    model_line(est, config, prices)
    sources = 2  # the ingest queue and the worker-failure queue
    polls = sources * usage.pollers_per_event_source * 3 * 60 * HOURS_PER_DAY
    idle.add(
        "queues",
        f"Lambda's SQS pollers: {sources} event sources x {usage.pollers_per_event_source} "
        f"pollers, 20 s long polls ({polls:,.0f} requests)",
        polls * prices["sqs"]["million_requests"] / 1e6,
    )
    cw = prices["cloudwatch"]
    model_alarms = 1 if model.uses_inference_component else 0
    tracking = 2 if model.uses_inference_component else 0  # AAS's AlarmHigh/AlarmLow (10 s)
    idle.add(
        "alarms",
        f"{alarms + model_alarms} alarms"
        + (f" + {tracking} high-resolution (target tracking)" if tracking else ""),
        ((alarms + model_alarms) * cw["alarm_month"] + tracking * cw["high_resolution_alarm_month"])
        / DAYS_PER_MONTH,
    )
    if model.source == "openai":
        secret = prices["secrets_manager"]["secret_month"] / DAYS_PER_MONTH
        idle.add("secret", "the OpenAI-compatible API key (Secrets Manager)", secret)
    idle.add("API, functions, tables, buckets", "pay per request: nothing while idle", 0.0)
    est.awake.add(
        "search",
        f"a woken collection: {AOSS_WAKE_SEARCH_OCU:g} search OCU (+{AOSS_WAKE_INDEXING_OCU:g} "
        "indexing while writing)",
        AOSS_WAKE_SEARCH_OCU * ocu if search.kind == "nextgen" else 0.0,
    )


def model_line(est: Estimate, config: Any, prices: dict[str, Any]) -> None:
    model, idle = config.model, est.idle_per_day
    if model.source != "sagemaker":
        where = {
            "bedrock": "Bedrock: billed per token only",
            "existing": "an existing endpoint: billed to whoever runs it",
            "openai": "an OpenAI-compatible server: billed by its provider",
        }[model.source]
        idle.add("model", where, 0.0)
        return
    price = instance_price(prices, model.instance_type)
    if price is None:
        est.notes.append(
            f"no list price recorded for {model.instance_type}: add it to "
            "cli/deploy/cost_prices.json; counted as $0"
        )
        price = 0.0
    est.awake.add("model", f"one {model.instance_type} instance", price)
    if model.uses_inference_component:
        idle.add(
            "model",
            f"{model.instance_type} inference component, scales to zero instances",
            0.0,
        )
        est.waking["model"] = (
            f"first answer after ~15 idle minutes waits {MODEL_WAKE_MIN[0]}-{MODEL_WAKE_MIN[1]} "
            f"minutes (status events meanwhile); each wake bills up to "
            f"~{MODEL_BILLED_PER_WAKE_MIN} minutes of the instance "
            f"(${price * MODEL_BILLED_PER_WAKE_MIN / 60:.2f})"
        )
    else:
        idle.add(
            "model",
            f"{model.instance_type} endpoint, always on (1 instance)",
            price * HOURS_PER_DAY,
        )


def _questions(est: Estimate, config: Any, prices: dict[str, Any], usage: Usage) -> None:
    q, n = est.per_1000_questions, 1000
    model_s = usage.model_s
    lam = prices["lambda"]
    gb_s = lam["gb_second"][config.lambda_.architecture]
    memory_gb = config.chat.query_memory_mb / 1024
    seconds = usage.front_s + usage.worker_overhead_s + model_s
    invocations = 2 + (1 if config.chat.auth != "none" else 0)
    lambda_usd = n * (
        seconds * memory_gb * gb_s
        + (usage.authorizer_s * 0.25 * gb_s if config.chat.auth != "none" else 0.0)
        + invocations * lam["million_requests"] / 1e6
    )
    q.add(
        "functions",
        f"{seconds:.1f} s at {config.chat.query_memory_mb} MB per answer, "
        f"{invocations} invocations",
        lambda_usd,
    )
    frames = min(usage.answer_tokens, math.ceil(model_s / usage.coalesce_s))
    messages = 1 + 1 + frames + 2  # ask, accepted, token frames, sources, done
    api = prices["api_gateway_websocket"]
    q.add(
        "API Gateway",
        f"~{messages} messages and ~1 connection minute per answer",
        n * (messages * api["million_messages"] + api["million_connection_minutes"]) / 1e6,
    )
    ddb = prices["dynamodb_on_demand"]
    q.add(
        "DynamoDB",
        f"{usage.state_writes} writes + {usage.state_reads} reads per answer",
        n * on_demand_usd(ddb, usage.state_writes, usage.state_reads),
    )
    model = config.model
    if model.source == "sagemaker":
        price = instance_price(prices, model.instance_type) or 0.0
        q.add(
            "model time",
            f"{model_s:.1f} s of {model.instance_type} per answer (one answer at a time; "
            "concurrent answers share it)",
            n * model_s * price / 3600,
        )
    else:
        q.add("model time", f"{model.source}: billed by its provider per token", 0.0)
    if config.search.kind == "nextgen":
        # A search keeps the collection awake; awake time is shared by the questions in it.
        q.add("OCU-hours", "covered by 'awake, per hour' (shared by every question meanwhile)", 0.0)
    else:
        q.add("OCU-hours", "within the classic collection's always-on minimum", 0.0)


def on_demand_usd(ddb: dict[str, Any], writes: float, reads: float) -> float:
    """DynamoDB on-demand: what ``writes`` write units and ``reads`` read units cost."""
    return float(writes * ddb["million_write_units"] + reads * ddb["million_read_units"]) / 1e6


def _documents(est: Estimate, config: Any, prices: dict[str, Any], usage: Usage) -> None:
    d, n = est.per_10000_documents, 10_000
    chunks = n * usage.chunks_per_doc
    vcpu = config.indexer.memory_mb / MB_PER_VCPU
    rate = usage.indexer_rate(vcpu)
    seconds = chunks / rate
    lam = prices["lambda"]
    gb_s = lam["gb_second"][config.lambda_.architecture]
    batches = n / config.indexer.batch_size
    d.add(
        "indexer function",
        f"{chunks:,} chunks ({usage.chunks_per_doc}/document of ~{usage.doc_kb:g} KB) at "
        f"{rate:.1f} chunks/s ({vcpu:.1f} vCPU, {config.indexer.memory_mb} MB): "
        f"{seconds / 3600:.1f} function-hours",
        seconds * config.indexer.memory_mb / 1024 * gb_s + batches * lam["million_requests"] / 1e6,
    )
    d.add(
        "queue",
        f"{usage.sqs_requests_per_doc:g} SQS requests per document",
        n * usage.sqs_requests_per_doc * prices["sqs"]["million_requests"] / 1e6,
    )
    ddb = prices["dynamodb_on_demand"]
    d.add(
        "status table",
        f"{usage.status_writes_per_doc} writes + {usage.status_reads_per_doc} reads per document",
        n * on_demand_usd(ddb, usage.status_writes_per_doc, usage.status_reads_per_doc),
    )
    s3 = prices["s3"]
    d.add(
        "documents bucket",
        "1 PUT + 1 GET per document (large documents go through S3)",
        n * (s3["thousand_puts"] + s3["thousand_gets"]) / 1000,
    )
    ocu = _ocu(prices)
    if config.search.kind == "nextgen":
        parallel = config.indexer.max_concurrency
        hours = seconds / parallel / 3600 + AOSS_IDLE_MIN / 60
        awake = AOSS_WAKE_SEARCH_OCU + AOSS_WAKE_INDEXING_OCU
        d.add(
            "OCU-hours",
            f"{awake:g} OCU awake for {hours:.2f} h ({parallel} indexers in parallel, "
            f"+{AOSS_IDLE_MIN} idle min)",
            hours * awake * ocu,
        )
    else:
        d.add("OCU-hours", "within the classic collection's always-on minimum", 0.0)
    gb = chunks * usage.bytes_per_chunk / 1e9
    docs_gb = n * usage.doc_kb * 1024 / 1e9
    storage = est.storage_per_month
    storage.add(
        "index",
        f"{gb:.2f} GB ({usage.bytes_per_chunk:,} B per chunk)",
        gb * prices["opensearch_serverless"]["storage_gb_month"],
    )
    storage.add("documents", f"{docs_gb:.2f} GB in S3", docs_gb * s3["storage_gb_month"])
    storage.add("status records", "~0.5 KB per document", n * 512 / 1e9 * ddb["storage_gb_month"])
