"""The transport-free answer pipeline: one accepted ``ask`` (a :class:`Job`, made
by the front door, ``services/query/frontdoor.py``) in, protocol events out.

    answer(job, sink, cancel)    retrieve -> fit prompt -> stream tokens -> sources -> done

``answer`` never raises for the client's, a dependency's or its own faults:
those end as ``error`` + ``done(stop_reason=error)``, as does running into
the caller's time limit; a client that left ends it quietly. It raises only
CancelledError.

Every job carries the caller's :class:`Principal`, which the transport took
from authentication (never from the client's message). Its access scope goes
into every search; conversations are kept per principal, and a replayed turn
whose documents the caller may no longer read is dropped. Each answer writes
one audit line (``services.query.answer.audit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from services.query.answer.attribution import (
    Attribution,
    Attributor,
    grounding,
    is_relevant,
    passage_ends,
    supported_share,
    supporting_numbers,
)
from services.query.answer.audit import audit_record, write_audit
from services.query.answer.citations import build_citations
from services.query.answer.context import FittedPrompt, fit_prompt
from services.query.answer.parts import QueryDeps
from services.query.answer.prompts import Turn
from services.query.answer.refusals import (
    NO_DOCUMENTS,
    NO_RELEVANT_SOURCES,
    TIME_LIMIT_MESSAGE,
    send_rejection,
)
from services.query.answer.retrieval import RetrievalFailed, Retriever
from services.query.answer.rewrite import model_rewriter
from services.query.answer.streaming import TokenStreamer
from services.query.answer.waking import SEARCH_TYPICAL_S, ModelWake, notice_if_slow, status
from services.query.state.conversation import conversation_key, trim_history
from shared.access import Access, Principal
from shared.documents import SearchHit
from shared.errors import ConnectionGone, ModelUnavailable, NoDocumentsIndexed, UnknownFilterField
from shared.ports import (
    ConnectionSink,
    GenerationParams,
    ModelFinish,
    ModelToken,
)
from shared.protocol import (
    AnswerSentence,
    AskAction,
    Citation,
    DoneEvent,
    ErrorCode,
    ErrorEvent,
    Grounding,
    SourcesEvent,
    StopReason,
    TokenEvent,
    encode_event,
)
from shared.settings import Settings

log = logging.getLogger(__name__)
MAX_ERROR_DETAIL = 300


@dataclass(frozen=True)
class Job:
    """An accepted ask with its ids resolved: what an answer needs, whichever
    transport runs it (the Lambda's worker payload is this job, addressed)."""

    ask: AskAction
    request_id: str
    conversation_id: str
    principal: Principal
    # Wall-clock time (epoch seconds) the ask's frame reached the front door.
    # ``time_to_first_token_ms`` and ``total_ms`` count from it on both
    # transports: on Lambda the worker runs in another invocation, so a
    # process-local clock could not carry the arrival there.
    received_at: float = field(default_factory=time.time)


@dataclass
class _Trail:
    """What one answer drew on, for the audit line and the stored turn."""

    retrieved: list[str] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)
    stop_reason: str = "incomplete"  # until the closing event is sent


@dataclass
class _Generation:
    parts: list[str] = field(default_factory=list)
    finish: ModelFinish | None = None
    first_token: asyncio.Event = field(default_factory=asyncio.Event)
    model_s: float | None = None  # the model's own time (waking excluded)


@dataclass(frozen=True)
class _GenerationResult:
    """How one answer's generation ended (not the indexer's per-message Outcome)."""

    text: str
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    error: ErrorEvent | None = None
    model_s: float | None = None


class AnswerService:
    def __init__(self, settings: Settings, deps: QueryDeps) -> None:
        self._settings = settings
        self.query = settings.query
        self._deps = deps
        rewriter = (
            model_rewriter(
                deps.model,
                timeout_s=settings.query.rewrite_timeout_s,
                weight=settings.query.rewrite_weight,
            )
            if settings.query.rewrite_question
            else None
        )
        self._retriever = Retriever(deps.embedder, deps.index, settings.query, rewriter)
        self._attributor = (
            Attributor(deps.embedder if settings.query.attribution_meaning else None)
            if settings.query.attribution
            else None
        )
        model = settings.model
        self._params = GenerationParams(
            max_new_tokens=model.max_new_tokens,
            temperature=model.temperature,
            top_p=model.top_p,
            stop=tuple(model.stop),
            repetition_penalty=model.repetition_penalty,
        )

    async def answer(
        self,
        job: Job,
        sink: ConnectionSink,
        cancel: asyncio.Event,
        time_limit_s: float | None = None,
    ) -> None:
        """Send ``status* token* sources done`` (or ``error done``) for an
        accepted job, whatever happens.

        ``time_limit_s``: what the caller's process may still spend (a Lambda
        must close the answer before it is killed); a model waking from zero is
        waited for within it. A client that left ends the answer quietly; a bug,
        or running into the time limit, ends it with ``error`` + ``done``.
        Raises only CancelledError.
        """
        deadline = asyncio.timeout(time_limit_s)
        try:
            async with deadline:
                await self._audited(job, sink, cancel, time_limit_s)
        except ConnectionGone:
            log.info("client left during %s; generation stopped", job.request_id)
        except Exception as exc:  # a bug must not kill the connection silently
            if isinstance(exc, TimeoutError) and deadline.expired():
                log.warning("answer %s hit the function's time limit", job.request_id)
                code, message = ErrorCode.MODEL_FAILED, TIME_LIMIT_MESSAGE
            else:
                log.exception("answer %s failed", job.request_id)
                code, message = ErrorCode.INTERNAL_ERROR, "internal error"
            with contextlib.suppress(Exception):
                await send_rejection(sink, job.request_id, code, message)

    async def _audited(
        self, job: Job, sink: ConnectionSink, cancel: asyncio.Event, time_limit_s: float | None
    ) -> None:
        """The answer, and its audit line however it ends."""
        # Timings count from the frame's arrival (job.received_at), measured on the
        # monotonic clock from here on.
        start = time.perf_counter() - max(0.0, time.time() - job.received_at)
        trail = _Trail()
        # The wait for a waking model ends by this time (the caller's limit counts
        # from now, not from the frame's arrival).
        budget = self.query.wake_wait_s
        if time_limit_s is not None:
            budget = min(budget, time_limit_s)
        wake_deadline = time.perf_counter() + budget
        try:
            await self._answer(job, sink, cancel, start, trail, wake_deadline)
        finally:
            write_audit(
                audit_record(
                    principal=job.principal,
                    request_id=job.request_id,
                    conversation_id=job.conversation_id,
                    retrieved=trail.retrieved,
                    cited=trail.cited,
                    stop_reason=trail.stop_reason,
                )
            )

    async def _answer(
        self,
        job: Job,
        sink: ConnectionSink,
        cancel: asyncio.Event,
        start: float,
        trail: _Trail,
        wake_deadline: float,
    ) -> None:
        try:
            fitted = await _until_cancelled(self._prepare(job, trail, sink), cancel)
        except NoDocumentsIndexed:
            total_ms = (time.perf_counter() - start) * 1000
            await send_rejection(
                sink, job.request_id, ErrorCode.NO_DOCUMENTS, NO_DOCUMENTS, total_ms
            )
            return
        except UnknownFilterField as exc:
            total_ms = (time.perf_counter() - start) * 1000
            trail.stop_reason = StopReason.ERROR
            await send_rejection(sink, job.request_id, ErrorCode.BAD_FILTER, str(exc), total_ms)
            return
        except RetrievalFailed as exc:
            # Details (index names, backend responses) go to the log, not to the client.
            log.warning("retrieval failed for %s: %s", job.request_id, exc)
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "error"
            message = f"could not search the documents ({cause}); try again"
            total_ms = (time.perf_counter() - start) * 1000
            trail.stop_reason = StopReason.ERROR
            await send_rejection(
                sink, job.request_id, ErrorCode.RETRIEVAL_FAILED, message, total_ms
            )
            return
        if fitted is None:
            outcome = _GenerationResult("", StopReason.CANCELLED, 0, 0)
            await self._finish(sink, job, [], outcome, start, None, trail)
            return
        relevant = any(is_relevant(job.ask.question, hit.chunk.text) for hit in fitted.sources)
        if not relevant and self.query.refuse_without_sources:
            await self._refuse(sink, job, fitted.sources, start, trail)
            return
        streamer = TokenStreamer(
            sink, job.request_id, self.query.coalesce_ms / 1000, self.query.max_frame_bytes
        )
        state = _Generation()
        # Attribution checks answer sentences against the whole chunks, also when
        # the prompt showed a trimmed excerpt (settings.model.source_tokens): the
        # reader's sources are the chunks, the excerpt is a subset of them, and
        # the same reference keeps the answer metrics comparable across budgets.
        texts = [hit.chunk.text for hit in fitted.sources]
        ahead = asyncio.create_task(self._embed_sources_ahead(state, texts))
        budget = max(0.0, wake_deadline - time.perf_counter())
        wake = ModelWake(sink.send, job.request_id, budget, poll_s=self.query.wake_poll_s)
        try:
            outcome = await self._generate(fitted.prompt, streamer, cancel, state, wake)
        except BaseException:
            ahead.cancel()
            raise
        await self._settle_ahead(ahead, state, outcome)
        if outcome.error is None:
            await self._remember(job, outcome, fitted)
        titles = [hit.chunk.title for hit in fitted.sources]
        attribution = await self._attribute(job, outcome, texts, titles)
        sent_at = streamer.first_sent_at
        await self._finish(
            sink, job, fitted.sources, outcome, start, sent_at, trail, attribution, relevant
        )

    @staticmethod
    async def _settle_ahead(
        ahead: asyncio.Task[None], state: _Generation, outcome: _GenerationResult
    ) -> None:
        """A completed answer waits for the sources' embedding begun during decoding:
        it fills the cache in one piece, so cancelling it would throw all of it
        away and attribution would start over (a short prompt's answer often ends
        first). A cancelled or failed one, or one that never had a token, does not."""
        if (
            outcome.stop_reason == StopReason.CANCELLED
            or outcome.error is not None
            or not state.first_token.is_set()
        ):
            ahead.cancel()
        await asyncio.gather(ahead, return_exceptions=True)

    async def _embed_sources_ahead(self, state: _Generation, texts: list[str]) -> None:
        """Read the sources' passages for attribution while the model decodes:
        after the first token, so the prompt's prefill keeps every core."""
        if self._attributor is None:
            return
        await state.first_token.wait()
        try:
            await self._attributor.prepare(texts)
        except Exception as exc:  # retried (and reported) by _attribute
            log.debug("reading sources ahead failed: %r", exc)

    async def _attribute(
        self, job: Job, outcome: _GenerationResult, texts: list[str], titles: list[str | None]
    ) -> Attribution | None:
        if self._attributor is None or outcome.error is not None:
            return None
        if outcome.stop_reason == StopReason.CANCELLED or not outcome.text.strip():
            return None
        try:
            return await self._attributor.attribute(outcome.text, texts, titles)
        except Exception as exc:  # the embedder failed: fall back to the [n] markers
            log.warning("attribution failed for %s: %r", job.request_id, exc)
            return None

    async def _prepare(self, job: Job, trail: _Trail, sink: ConnectionSink) -> FittedPrompt:
        ask, model = job.ask, self._deps.model
        access = job.principal.access
        key = conversation_key(job.principal, job.conversation_id)
        turns = await self._deps.conversations.history(key)
        stored = await self._readable_turns(turns, access, job.request_id)
        history = trim_history(
            stored, self.query.history_turns, self.query.history_tokens, model.count_tokens
        )
        # A follow-up ("and in 2023?") is searched together with the previous question.
        search_text = f"{history[-1].question}\n{ask.question}" if history else ask.question

        async def search_is_slow(elapsed_s: float) -> None:
            # A collection scaled to zero answers its first search 10-30 s late.
            await sink.send(status(job.request_id, "search", SEARCH_TYPICAL_S, elapsed_s))

        search = self._retriever.retrieve(
            search_text,
            ask.k or self.query.default_k,
            dict(ask.filters),
            ask.mode or self.query.search_mode,
            access,
        )
        hits = await notice_if_slow(search, search_is_slow, self.query.search_notice_s)
        trail.retrieved = [hit.chunk.doc_id for hit in hits]
        return fit_prompt(
            family=model.family,
            system=self.query.presets[ask.preset or "default"],
            history=history,
            question=ask.question,
            hits=hits,
            context_tokens=self._settings.model.context_tokens,
            max_new_tokens=self._params.max_new_tokens,
            count=model.count_tokens,
            source_tokens=self._settings.model.prompt_source_tokens,
            focus_on=search_text,
        )

    async def _generate(
        self,
        prompt: str,
        streamer: TokenStreamer,
        cancel: asyncio.Event,
        state: _Generation,
        wake: ModelWake,
    ) -> _GenerationResult:
        sender = asyncio.create_task(streamer.run())
        generation = asyncio.create_task(self._consume(prompt, streamer, state, wake))
        cancelled = asyncio.create_task(cancel.wait())
        try:
            await asyncio.wait({sender, generation, cancelled}, return_when="FIRST_COMPLETED")
            if sender.done():  # the sink failed (client gone): stop generating at once
                generation.cancel()
                await _settle(generation)
                sender.result()  # re-raises ConnectionGone
            if not generation.done():  # cancel requested
                generation.cancel()
                await _settle(generation)
            streamer.close()
            await sender
        finally:
            for task in (sender, generation, cancelled):
                task.cancel()
            await asyncio.gather(sender, generation, cancelled, return_exceptions=True)
        return self._outcome(prompt, state, generation)

    async def _consume(
        self, prompt: str, streamer: TokenStreamer, state: _Generation, wake: ModelWake
    ) -> None:
        # A model scaled to zero is waited for (status events), within the budget.
        stream = wake.stream(lambda: self._deps.model.stream(prompt, self._params))
        try:
            async for event in stream:
                if isinstance(event, ModelToken):
                    state.parts.append(event.text)
                    streamer.push(event.text)
                    state.first_token.set()
                else:
                    state.finish = event
        finally:
            await stream.aclose()  # stops the backend's generation (HTTP stream, llama.cpp)
            if wake.opened_at is not None:
                state.model_s = wake.clock.now() - wake.opened_at

    def _outcome(
        self, prompt: str, state: _Generation, generation: asyncio.Task[None]
    ) -> _GenerationResult:
        text = "".join(state.parts)
        finish = state.finish
        count = self._deps.model.count_tokens
        prompt_tokens = finish.prompt_tokens if finish and finish.prompt_tokens else count(prompt)
        completion_tokens = (
            finish.completion_tokens if finish and finish.completion_tokens else len(state.parts)
        )
        if generation.cancelled():
            return _GenerationResult(
                text, StopReason.CANCELLED, prompt_tokens, completion_tokens, model_s=state.model_s
            )
        error = generation.exception()
        if isinstance(error, ModelUnavailable):
            log.warning("model unavailable: %s", error)
            event = ErrorEvent(
                request_id=None, code=ErrorCode.MODEL_UNAVAILABLE, message=str(error)
            )
            return _GenerationResult(
                text, StopReason.ERROR, prompt_tokens, completion_tokens, event
            )
        if error is not None or finish is None:
            log.warning("model failed: %r", error)
            message = "the model failed while answering"
            if error is not None:
                message += f": {str(error)[:MAX_ERROR_DETAIL]}"
            event = ErrorEvent(request_id=None, code=ErrorCode.MODEL_FAILED, message=message)
            return _GenerationResult(
                text, StopReason.ERROR, prompt_tokens, completion_tokens, event
            )
        return _GenerationResult(
            text, finish.stop_reason, prompt_tokens, completion_tokens, model_s=state.model_s
        )

    async def _readable_turns(
        self, turns: list[Turn], access: Access, request_id: str
    ) -> list[Turn]:
        """The stored turns whose every document the caller may still read (access
        lists and group memberships change between turns). Fails closed."""
        if access.unrestricted or not turns:
            return turns
        wanted = sorted({doc_id for turn in turns for doc_id in turn.doc_ids})
        try:
            allowed = await self._deps.index.readable(wanted, access) if wanted else set()
        except Exception as exc:
            raise RetrievalFailed(f"could not check history access: {exc!r}") from exc
        kept = [turn for turn in turns if allowed.issuperset(turn.doc_ids)]
        if len(kept) < len(turns):
            log.info("dropped %d unreadable turn(s) for %s", len(turns) - len(kept), request_id)
        return kept

    async def _remember(self, job: Job, outcome: _GenerationResult, fitted: FittedPrompt) -> None:
        if outcome.stop_reason == StopReason.CANCELLED or not outcome.text.strip():
            return
        # Everything the answer could have drawn on: its sources and the turns replayed.
        drawn_on = [hit.chunk.doc_id for hit in fitted.sources]
        drawn_on += [doc_id for turn in fitted.history for doc_id in turn.doc_ids]
        turn = Turn(
            question=job.ask.question,
            answer=outcome.text.strip(),
            doc_ids=tuple(sorted(set(drawn_on))),
        )
        key = conversation_key(job.principal, job.conversation_id)
        await self._deps.conversations.append(key, turn, max(self.query.history_turns, 1))

    async def _finish(
        self,
        sink: ConnectionSink,
        job: Job,
        sources: list[SearchHit],
        outcome: _GenerationResult,
        start: float,
        first_sent_at: float | None,
        trail: _Trail,
        attribution: Attribution | None = None,
        relevant: bool = True,
    ) -> None:
        trail.stop_reason = outcome.stop_reason
        share = None
        if outcome.error is not None:
            error = outcome.error.model_copy(update={"request_id": job.request_id})
            await sink.send(error)
        else:
            supported = None
            if attribution is not None:
                supported = supporting_numbers(attribution.sentences)
            reach = passage_ends(attribution.sentences) if attribution is not None else {}
            citations = build_citations(
                sources, outcome.text, self.query.excerpt_chars, supported, reach
            )
            if attribution is not None:
                share = supported_share(outcome.text, attribution.sentences)
            trail.cited = [c.doc_id for c in citations if c.cited]
            sentences = attribution.sentences if attribution is not None else None
            await sink.send(self._sources_event(job.request_id, citations, sentences))
        now = time.perf_counter()
        ttft = (first_sent_at - start) * 1000 if first_sent_at is not None else None
        done = DoneEvent(
            request_id=job.request_id,
            stop_reason=outcome.stop_reason,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            time_to_first_token_ms=ttft,
            total_ms=(now - start) * 1000,
            attribution_ms=attribution.ms if attribution is not None else None,
            model_ms=outcome.model_s * 1000 if outcome.model_s is not None else None,
            supported_share=share,
            grounding=grounding(share, relevant)
            if attribution is not None or not relevant
            else None,
        )
        await sink.send(done)

    async def _refuse(
        self, sink: ConnectionSink, job: Job, sources: list[SearchHit], start: float, trail: _Trail
    ) -> None:
        """No retrieved source is about the question and the settings say to
        refuse: say so, list what was found (none cited), call no model."""
        trail.stop_reason = StopReason.REFUSED
        await sink.send(TokenEvent(request_id=job.request_id, seq=0, text=NO_RELEVANT_SOURCES))
        citations = build_citations(sources, "", self.query.excerpt_chars, set())
        await sink.send(self._sources_event(job.request_id, citations, []))
        done = DoneEvent(
            request_id=job.request_id,
            stop_reason=StopReason.REFUSED,
            prompt_tokens=0,
            completion_tokens=0,
            total_ms=(time.perf_counter() - start) * 1000,
            grounding=Grounding.NO_SOURCES,
        )
        await sink.send(done)

    def _sources_event(
        self,
        request_id: str,
        citations: list[Citation],
        sentences: list[AnswerSentence] | None = None,
    ) -> SourcesEvent:
        """Shorten excerpts until the event fits one frame (k=50 with long titles may not)."""
        event = SourcesEvent(request_id=request_id, citations=citations, sentences=sentences)
        limit = self.query.excerpt_chars
        while len(encode_event(event).encode()) > self.query.max_frame_bytes and limit > 20:
            limit //= 2
            shorter = [c.model_copy(update={"excerpt": c.excerpt[:limit]}) for c in citations]
            event = SourcesEvent(request_id=request_id, citations=shorter, sentences=sentences)
        return event


async def _until_cancelled(
    coro: Coroutine[Any, Any, FittedPrompt], cancel: asyncio.Event
) -> FittedPrompt | None:
    """Run the preparation, or return None as soon as ``cancel`` is set."""
    work = asyncio.create_task(coro)
    waiter = asyncio.create_task(cancel.wait())
    try:
        await asyncio.wait({work, waiter}, return_when="FIRST_COMPLETED")
        if work.done():
            return work.result()
        return None
    finally:
        work.cancel()
        waiter.cancel()
        await asyncio.gather(work, waiter, return_exceptions=True)


async def _settle(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
