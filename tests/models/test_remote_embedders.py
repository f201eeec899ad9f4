"""SageMaker and Bedrock embedders over real HTTP (aiobotocore) against a
local server speaking those services' wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from botocore.config import Config

from shared.adapters.aws import bedrock_embedder, sagemaker_embedder
from shared.adapters.aws.bedrock_embedder import BedrockEmbedder
from shared.adapters.aws.remote_embedding import map_client_error
from shared.adapters.aws.sagemaker_embedder import SageMakerEmbedder
from shared.errors import (
    ConfigurationError,
    DimensionMismatch,
    ModelError,
    ModelUnavailable,
    TransientError,
)
from shared.settings import EmbedderSettings, Settings
from tests.aws_doubles import AwsDouble, aws_error, json_response, serve

NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})


@pytest.fixture(autouse=True)
def _dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-for-signing-only")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
async def aws() -> AsyncIterator[AwsDouble]:
    async for double in serve(AwsDouble()):
        yield double


def _sagemaker(aws: AwsDouble, dimension: int = 3, batch_size: int = 32) -> SageMakerEmbedder:
    return SageMakerEmbedder(
        "embed-ep",
        dimension,
        region="eu-west-1",
        batch_size=batch_size,
        endpoint_url=aws.url,
        client_config=NO_RETRIES,
    )


def _bedrock(aws: AwsDouble, dimension: int = 256, concurrency: int = 2) -> BedrockEmbedder:
    return BedrockEmbedder(
        "amazon.titan-embed-text-v2:0",
        dimension,
        region="us-east-1",
        concurrency=concurrency,
        endpoint_url=aws.url,
        client_config=NO_RETRIES,
    )


# ---- SageMaker ---------------------------------------------------------------


def _tei(path: str, body: dict[str, Any]) -> web.Response:
    # TEI: one pooled vector per input, not normalised here on purpose.
    return json_response([[float(len(t)), 0.0, 0.0] for t in body["inputs"]])


async def test_sagemaker_sends_hf_inputs_signed_and_normalises(aws: AwsDouble) -> None:
    aws.respond = _tei
    embedder = _sagemaker(aws, batch_size=2)
    vectors = await embedder.embed_documents(["a", "bb", "ccc"])
    await embedder.close()
    np.testing.assert_allclose(vectors, [[1, 0, 0]] * 3)
    assert vectors.dtype == np.float32
    assert [r["body"] for r in aws.requests] == [{"inputs": ["a", "bb"]}, {"inputs": ["ccc"]}]
    assert aws.requests[0]["path"] == "/endpoints/embed-ep/invocations"
    auth = aws.requests[0]["headers"]["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256") and "/eu-west-1/sagemaker/aws4_request" in auth


async def test_sagemaker_mean_pools_token_vectors(aws: AwsDouble) -> None:
    aws.respond = lambda path, body: json_response([[[1.0, 0.0], [0.0, 1.0]]])
    embedder = _sagemaker(aws, dimension=2)
    vector = await embedder.embed_query("hello")
    await embedder.close()
    np.testing.assert_allclose(vector, [2**-0.5, 2**-0.5], rtol=1e-6)


async def test_sagemaker_dimension_mismatch_is_a_configuration_error(aws: AwsDouble) -> None:
    aws.respond = _tei
    embedder = _sagemaker(aws, dimension=384)
    with pytest.raises(DimensionMismatch):
        await embedder.embed_query("x")
    await embedder.close()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, ModelUnavailable),
        ("ServiceUnavailable", 503, ModelUnavailable),
        ("ModelError", 424, ModelError),
        ("ValidationError", 400, ModelError),
    ],
)
async def test_sagemaker_errors_are_mapped(
    aws: AwsDouble, code: str, status: int, expected: type[Exception]
) -> None:
    aws.respond = lambda path, body: aws_error(code, "nope", status)
    embedder = _sagemaker(aws)
    with pytest.raises(expected) as caught:
        await embedder.embed_query("x")
    await embedder.close()
    assert code in str(caught.value)
    assert isinstance(caught.value, TransientError) == (expected is ModelUnavailable)


async def test_unreachable_endpoint_is_transient() -> None:
    embedder = SageMakerEmbedder(
        "ep", 3, region="us-east-1", endpoint_url="http://127.0.0.1:9", client_config=NO_RETRIES
    )
    with pytest.raises(ModelUnavailable):
        await embedder.embed_query("x")
    await embedder.close()


# ---- Bedrock Titan V2 -----------------------------------------------------------


def _titan(path: str, body: dict[str, Any]) -> web.Response:
    vector = np.zeros(body["dimensions"])
    vector[len(body["inputText"]) % body["dimensions"]] = 1.0
    return json_response({"embedding": vector.tolist(), "inputTextTokenCount": 3})


async def test_bedrock_one_call_per_text_in_order(aws: AwsDouble) -> None:
    aws.respond = _titan
    embedder = _bedrock(aws)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    vectors = await embedder.embed_documents(texts)
    await embedder.close()
    assert vectors.shape == (5, 256)
    assert [int(np.argmax(v)) for v in vectors] == [1, 2, 3, 4, 5]
    bodies = sorted((r["body"] for r in aws.requests), key=lambda b: b["inputText"])
    assert bodies[0] == {"inputText": "a", "dimensions": 256, "normalize": True}
    assert aws.requests[0]["path"] == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert "/us-east-1/bedrock/aws4_request" in aws.requests[0]["headers"]["Authorization"]
    assert embedder.model_id == "bedrock:amazon.titan-embed-text-v2:0:256"


async def test_bedrock_throttling_is_transient_validation_is_model_error(aws: AwsDouble) -> None:
    embedder = _bedrock(aws)
    aws.respond = lambda path, body: aws_error("ThrottlingException", "slow down", 429)
    with pytest.raises(ModelUnavailable):
        await embedder.embed_documents(["a", "b"])
    aws.respond = lambda path, body: aws_error("ValidationException", "bad input", 400)
    with pytest.raises(ModelError) as caught:
        await embedder.embed_query("a")
    assert not isinstance(caught.value, TransientError)
    await embedder.close()


async def test_bedrock_response_without_embedding_is_model_error(aws: AwsDouble) -> None:
    aws.respond = lambda path, body: json_response({"message": "?"})
    embedder = _bedrock(aws)
    with pytest.raises(ModelError):
        await embedder.embed_query("a")
    await embedder.close()


# ---- settings ------------------------------------------------------------------


def test_remote_embedders_require_a_dimension() -> None:
    for module, backend in ((sagemaker_embedder, "sagemaker"), (bedrock_embedder, "bedrock")):
        settings = Settings(embedder=EmbedderSettings(backend=backend, endpoint_name="ep"))
        with pytest.raises(ConfigurationError, match="RAG_EMBEDDER__DIMENSION"):
            module.from_settings(settings)


def test_sagemaker_requires_an_endpoint_and_titan_a_valid_size() -> None:
    with pytest.raises(ConfigurationError, match="ENDPOINT_NAME"):
        sagemaker_embedder.from_settings(
            Settings(embedder=EmbedderSettings(backend="sagemaker", dimension=384))
        )
    with pytest.raises(ConfigurationError, match="256"):
        bedrock_embedder.from_settings(
            Settings(embedder=EmbedderSettings(backend="bedrock", dimension=384))
        )
    ok = bedrock_embedder.from_settings(
        Settings(embedder=EmbedderSettings(backend="bedrock", dimension=1024))
    )
    assert ok.dimension == 1024


def test_unknown_errors_are_model_errors() -> None:
    assert isinstance(map_client_error(RuntimeError("x"), "ep"), ModelError)
