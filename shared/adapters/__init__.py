"""Adapters of the ports in ``shared/ports.py``, one package per backend:

    aws/                SQS, S3, DynamoDB status, SageMaker and Bedrock models, Secrets Manager
                        (helpers: client.py, the lazy aiobotocore client; remote_chat.py and
                        remote_embedding.py, what the model endpoints share; secrets.py)
    sqlite/             the embedded stores: vector index, status, queue (helper: common.py)
    opensearch/         the vector index on OpenSearch / AOSS (helper: requests.py, pure builders)
    local_models/       MiniLM embedder, WordPiece token counter, llama.cpp chat model
                        (helpers: gguf_copy.py; make_copy.py, the script that makes the copy)
    openai_compatible/  the chat model of any OpenAI-compatible server
    helpers/            what two backends share: stop sequences, process identity

``shared/factory.py`` builds them by name; tests/test_layout.py checks that
every module here is an adapter of a port or a named helper.
"""
