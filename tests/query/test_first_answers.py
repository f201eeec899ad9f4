"""Issue #12: the first questions after a deploy get clear answers.

- before any document is indexed: ``no_documents`` (not ``retrieval_failed``),
  on the embedded store and on a real OpenSearch node whose index is missing;
- while the SageMaker endpoint is not in service: ``model_unavailable``,
  from the real aiobotocore client reading SageMaker's recorded error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from aiohttp import web

from services.query.answer.parts import build_query_deps
from services.query.answer.service import AnswerService
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.adapters.aws.sagemaker_chat import SageMakerChatModel
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.errors import ModelUnavailable
from shared.ports import ChatModel, VectorIndex
from shared.protocol import ErrorCode, StopReason
from shared.settings import AwsSettings, IndexSettings, ModelSettings, Settings
from tests.aws_doubles import serve_app
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink
from tests.query.test_chat_adapters import PARAMS

ASK = json.dumps({"action": "ask", "question": "What is the leave policy?", "request_id": "q1"})


async def answer(settings: Settings, index: VectorIndex, model: ChatModel) -> RecordingSink:
    deps = build_query_deps(settings, embedder=FakeEmbedder(), index=index, model=model)
    sink = RecordingSink()
    session = ConnectionSession(AnswerService(settings, deps), sink, 1, Principal.single_user())
    await session.handle_frame(ASK)
    await session.wait_idle()
    return sink


def assert_no_documents(sink: RecordingSink, model: FakeChatModel) -> None:
    assert sink.kinds() == ["accepted", "error", "done"]
    error = sink.of("error")[0]
    assert error.code == ErrorCode.NO_DOCUMENTS  # type: ignore[union-attr]
    assert "no documents indexed yet" in error.message  # type: ignore[union-attr]
    assert "rag ingest" in error.message  # type: ignore[union-attr]
    assert sink.of("done")[0].stop_reason == StopReason.ERROR  # type: ignore[union-attr]
    assert model.streams == []  # the model is not asked to answer from nothing


async def test_embedded_store_before_the_first_document(tmp_path: Path) -> None:
    store = SqliteVectorIndex(tmp_path / "index.db")
    model = FakeChatModel()
    try:
        sink = await answer(Settings(data_dir=tmp_path), store, model)
    finally:
        await store.close()
    assert_no_documents(sink, model)


@pytest.mark.opensearch
async def test_opensearch_before_the_index_exists(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: Literal["faiss", "lucene"],
) -> None:
    # GIVEN a deployed stack whose indexer has not started yet: no index at all
    settings = Settings(
        index=IndexSettings(
            backend="opensearch",
            opensearch_url=opensearch_url,
            index_name=opensearch_index_name,
            engine=opensearch_knn_engine,
        )
    )
    index = OpenSearchVectorIndex(settings)
    model = FakeChatModel()
    try:
        sink = await answer(settings, index, model)
    finally:
        await index.close()
    # THEN the client is told to ingest first, not that retrieval failed
    assert_no_documents(sink, model)


# ---- the endpoint is not in service -----------------------------------------------


def sagemaker_refusal(status: int, code: str, message: str) -> web.Application:
    """SageMaker Runtime's error shape (rest-json): the type in x-amzn-ErrorType."""

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"message": message},
            status=status,
            headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/sagemaker/"},
        )

    app = web.Application()
    app.router.add_post("/endpoints/{name}/invocations-response-stream", refuse)
    return app


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


async def endpoint_settings(app: web.Application) -> AsyncIterator[Settings]:
    async for url in serve_app(app):
        yield Settings(
            aws=AwsSettings(region="us-east-1", endpoint_url=url),
            model=ModelSettings(backend="sagemaker", endpoint_name="rag-dev-llm"),
        )


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        # what InvokeEndpoint says for an endpoint still Creating, Failed or deleted
        (400, "ValidationError", "Endpoint rag-dev-llm of account 123456789012 not found."),
        (429, "ModelNotReadyException", "Model is not ready"),
        (400, "ThrottlingException", "Rate exceeded"),
    ],
)
async def test_an_endpoint_not_in_service_is_model_unavailable(
    aws_credentials: None, tmp_path: Path, status: int, code: str, message: str
) -> None:
    async for settings in endpoint_settings(sagemaker_refusal(status, code, message)):
        model = SageMakerChatModel(settings)
        try:
            with pytest.raises(ModelUnavailable, match="rag-dev-llm"):
                async for _ in model.stream("p", PARAMS):
                    pass
        finally:
            await model.close()


async def test_other_refusals_stay_model_failures(aws_credentials: None) -> None:
    app = sagemaker_refusal(400, "ValidationError", "Input is too long")
    async for settings in endpoint_settings(app):
        model = SageMakerChatModel(settings)
        try:
            with pytest.raises(Exception) as raised:
                async for _ in model.stream("p", PARAMS):
                    pass
        finally:
            await model.close()
        assert not isinstance(raised.value, ModelUnavailable)
        assert "Input is too long" in str(raised.value)


async def test_the_client_gets_model_unavailable(
    aws_credentials: None, tmp_path: Path, index: SqliteVectorIndex
) -> None:
    # GIVEN the chat API is up but its endpoint is still being created
    app = sagemaker_refusal(400, "ValidationError", "Endpoint rag-dev-llm of account 1 not found.")
    async for settings in endpoint_settings(app):
        model = SageMakerChatModel(settings)
        try:
            sink = await answer(settings, index, model)
        finally:
            await model.close()
    # THEN the answer ends with a model_unavailable error saying what to do
    assert sink.kinds() == ["accepted", "error", "done"]
    error = sink.of("error")[0]
    assert error.code == ErrorCode.MODEL_UNAVAILABLE  # type: ignore[union-attr]
    assert "try again later" in error.message  # type: ignore[union-attr]


async def test_fake_model_unavailable_mid_session_keeps_the_connection(
    tmp_path: Path, index: SqliteVectorIndex
) -> None:
    model = FakeChatModel(Script(tokens=[], error=ModelUnavailable("endpoint starting")))
    sink = await answer(Settings(data_dir=tmp_path), index, model)
    assert sink.of("error")[0].code == ErrorCode.MODEL_UNAVAILABLE  # type: ignore[union-attr]
