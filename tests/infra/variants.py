"""The stack config variants every infra test runs against."""

from __future__ import annotations

from typing import Any

from tests.infra.mocks import REGION

STATIC_TOKEN = "correct-horse-battery-staple-0123456789"
OPENAI_API_KEY = "sk-test-openai-compatible-0123456789"  # rag:openaiApiKey of openai variants

VPC = {"vpcId": "vpc-1", "subnetIds": ["subnet-a", "subnet-b"], "securityGroupIds": ["sg-1"]}
VARIANTS: dict[str, dict[str, Any]] = {
    "public-sagemaker-token": {"model": {"acceptEula": True}},
    "public-sagemaker-s3-weights-protected": {
        "model": {"weights": "s3", "weightsS3Uri": "s3://my-models/llama-2-7b-chat/"},
        "protect": True,
        "lambda": {"pythonVersion": "3.13"},
    },
    # Today's always-on resources: a classic collection and a plain endpoint.
    "public-sagemaker-always-on": {
        "search": {"collectionKind": "classic"},
        "model": {"acceptEula": True, "scaleToZero": False},
    },
    "vpc-existing-cognito": {
        "search": {"network": "vpc"},
        "vpc": VPC,
        "model": {"source": "existing", "endpointName": "My-Llama2-Endpoint"},
        "chat": {"auth": "cognito", "accountLogRole": "keep"},
    },
    "public-bedrock-token-kms-admins": {
        "search": {
            "kmsKeyArn": f"arn:aws:kms:{REGION}:123456789012:key/abcd",
            "adminPrincipals": ["arn:aws:iam::123456789012:role/Admin"],
        },
        "model": {"source": "bedrock", "bedrockModelId": "us.meta.llama3-1-8b-instruct-v1:0"},
        "indexer": {"timeoutSeconds": 300, "batchSize": 5, "maxConcurrency": 10},
        "ingest": {"maxReceiveCount": 3},
        "observability": {"alarmTopicArn": f"arn:aws:sns:{REGION}:123456789012:alarms"},
        "chat": {"apiLogs": True, "accountLogRole": "create"},
        "lambda": {"architecture": "x86_64"},
    },
    "public-openai-token": {
        "model": {
            "source": "openai",
            "openaiBaseUrl": "https://llm.example.com/v1",
            "openaiModel": "llama3.1:8b-instruct",
        },
    },
    "public-bedrock-noauth": {
        "model": {"source": "bedrock"},
        "chat": {"auth": "none"},
        "indexer": {"reconcileSchedule": None},
    },
}
