"""Ingest: the SQS queue and its DLQ, the documents bucket, the per-document status table."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.buckets import private_bucket
from infra.config import IngestConfig

# 1 MiB, the largest SQS message (larger documents go through the bucket).
MAX_MESSAGE_BYTES = 1_048_576
# AWS: visibility timeout >= 6x the function timeout (+ the batching window).
VISIBILITY_FACTOR = 6


def visibility_timeout(function_timeout: int, batching_window: int) -> int:
    return VISIBILITY_FACTOR * function_timeout + batching_window


@dataclass(frozen=True)
class IngestArgs:
    ingest: IngestConfig
    indexer_timeout_seconds: int
    batching_window_seconds: int
    protect: bool = False


class Ingest(pulumi.ComponentResource):
    def __init__(self, name: str, args: IngestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:Ingest", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.ingest
        self.visibility_timeout = visibility_timeout(
            args.indexer_timeout_seconds, args.batching_window_seconds
        )
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            message_retention_seconds=cfg.dlq_retention_seconds,
            max_message_size=MAX_MESSAGE_BYTES,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            message_retention_seconds=cfg.retention_seconds,
            max_message_size=MAX_MESSAGE_BYTES,
            visibility_timeout_seconds=self.visibility_timeout,
            receive_wait_time_seconds=20,
            sqs_managed_sse_enabled=True,
            redrive_policy=pulumi.Output.json_dumps(
                {
                    "deadLetterTargetArn": self.dead_letter_queue.arn,
                    "maxReceiveCount": cfg.max_receive_count,
                }
            ),
            opts=child,
        )
        # Only this queue may redrive into the DLQ.
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=pulumi.Output.json_dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
            opts=child,
        )
        self.bucket = private_bucket(
            f"{name}-documents",
            self,
            versioned=cfg.versioned_bucket,
            force_destroy=cfg.force_destroy_bucket,
            protect=args.protect,
        ).bucket
        self.status_table = aws.dynamodb.Table(
            f"{name}-status",
            billing_mode="PAY_PER_REQUEST",
            hash_key="doc_id",
            attributes=[aws.dynamodb.TableAttributeArgs(name="doc_id", type="S")],
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            # Expired delete tombstones and stale leases go by themselves.
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="ttl_epoch", enabled=True),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.register_outputs(
            {
                "queue_url": self.queue.url,
                "dlq_url": self.dead_letter_queue.url,
                "bucket": self.bucket.bucket,
                "status_table": self.status_table.name,
            }
        )
