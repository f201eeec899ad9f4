"""API Gateway WebSocket event factories (the shapes Lambda receives) and a
Lambda context. Field names and formats follow the events API Gateway sends
to a WebSocket integration."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
STAGE = "dev"


def new_connection_id() -> str:
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode()  # e.g. "SZ9zJdv0IAMCLtA="


def _request_context(route: str, event_type: str, connection_id: str) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16] + "=",
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": now_ms - 1000,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": "203.0.113.7"},
        "requestId": uuid.uuid4().hex[:16] + "=",
        "domainName": DOMAIN,
        "connectionId": connection_id,
        "apiId": API_ID,
    }


def authorizer_context(
    principal: str = "user-1", groups: list[str] | None = None
) -> dict[str, Any]:
    """``requestContext.authorizer`` as API Gateway builds it from our authorizer's
    Allow: its ``context`` keys (scalars only: groups as a JSON string), plus
    ``principalId`` and the authorizer's ``integrationLatency`` in ms."""
    return {
        "principal": principal,
        "groups": json.dumps(groups or []),
        "principalId": principal,
        "integrationLatency": 312,
    }


def connect_event(
    connection_id: str,
    subprotocols: str | None = None,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = {
        "Host": DOMAIN,
        "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode(),
        "Sec-WebSocket-Version": "13",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if subprotocols is not None:
        headers["Sec-WebSocket-Protocol"] = subprotocols
    context = _request_context("$connect", "CONNECT", connection_id)
    context["authorizer"] = authorizer if authorizer is not None else authorizer_context()
    return {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {"token": "eyJ..."},
        "multiValueQueryStringParameters": {"token": ["eyJ..."]},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def disconnect_event(connection_id: str) -> dict[str, Any]:
    context = _request_context("$disconnect", "DISCONNECT", connection_id)
    context["disconnectStatusCode"] = 1001
    context["disconnectReason"] = "Going away"
    return {
        "headers": {"Host": DOMAIN, "x-api-key": "", "X-Forwarded-For": ""},
        "multiValueHeaders": {"Host": [DOMAIN]},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def message_event(
    connection_id: str, body: str | dict[str, Any], authorizer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``$default`` MESSAGE event (the API routes on ``$request.body.action``,
    and every action this service knows is handled by ``$default``). With
    ``authorizer``, the event carries the $connect authorizer's context too."""
    context = _request_context("$default", "MESSAGE", connection_id)
    if authorizer is not None:
        context["authorizer"] = authorizer
    context["messageId"] = uuid.uuid4().hex[:16] + "="
    text = body if isinstance(body, str) else json.dumps(body)
    return {"requestContext": context, "body": text, "isBase64Encoded": False}


@dataclass
class LambdaContext:
    function_name: str = "rag-query-dev"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/rag-query-dev"
    remaining_ms: int = 300_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# ---- what Lambda sends when it drops an asynchronous worker event ---------------
# The invocation record follows AWS's documented format ("Capturing records of
# Lambda asynchronous invocations": version, timestamp, requestContext with
# requestId / functionArn / condition / approximateInvokeCount, requestPayload,
# and for a function that ran, responseContext / responsePayload); the SQS event
# is what an SQS event source mapping delivers to the function.


def invocation_failure_record(
    worker_event: dict[str, Any], condition: str = "EventAgeExceeded"
) -> dict[str, Any]:
    ran = condition == "RetriesExhausted"
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{LambdaContext().invoked_function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": 1 if ran else 0,
        },
        "requestPayload": worker_event,
    }
    if ran:
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        }
        record["responsePayload"] = {
            "errorMessage": "Task timed out after 300.00 seconds",
            "errorType": "Sandbox.Timedout",
        }
    return record


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    queue = "arn:aws:sqs:us-east-1:123456789012:rag-dev-chat-worker-failures"
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(uuid.uuid4().bytes).decode(),
                "body": json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AROAEXAMPLE:awslambda_123_20261207000000000",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }
