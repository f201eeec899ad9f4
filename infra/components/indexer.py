"""The indexer Lambda, fed by the ingest queue, and its scheduled reconcile run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import env, policies
from infra.components.ingest import Ingest
from infra.components.lambdas import (
    CodeLocation,
    FunctionSpec,
    inline_policy,
    log_group,
    service_function,
)
from infra.config import StackConfig

HANDLER = "services.indexer.lambda_handler.handler"
# The event the schedule sends (services.indexer.lambda_handler.is_reconcile_event).
RECONCILE_INPUT = '{"rag_task": "reconcile"}'


@dataclass(frozen=True)
class IndexerArgs:
    config: StackConfig
    code: CodeLocation
    role: aws.iam.Role
    ingest: Ingest
    collection_arn: pulumi.Input[str]
    collection_endpoint: pulumi.Input[str]
    vpc_statements: list[dict[str, Any]]


def indexer_statements(
    ingest: Ingest, logs_arn: pulumi.Output[str], collection_arn: pulumi.Input[str]
) -> list[dict[str, Any]]:
    return [
        policies.log_statement(logs_arn),
        policies.statement(
            "ConsumeIngestQueue",
            policies.QUEUE_CONSUMER_ACTIONS,
            [ingest.queue.arn],
        ),
        # Schema-invalid messages go straight to the DLQ with a reason, not through retries.
        policies.statement(
            "DeadLetterInvalidMessages", ["sqs:SendMessage"], [ingest.dead_letter_queue.arn]
        ),
        # The reconciler re-queues documents whose chunks went missing.
        policies.statement("RequeueDriftedDocuments", ["sqs:SendMessage"], [ingest.queue.arn]),
        # The bucket is versioned and messages may name a version_id:
        # GetObject with a VersionId needs s3:GetObjectVersion as well.
        policies.statement(
            "ReadDocuments",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [pulumi.Output.concat(ingest.bucket.arn, "/*")],
        ),
        policies.statement(
            "DocumentStatus",
            # Scan: the reconciler walks every record; leases are conditional puts/deletes.
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Scan",
            ],
            [ingest.status_table.arn],
        ),
        # Data-plane permissions are narrowed further by the collection's data access policy.
        policies.statement("OpenSearchServerless", ["aoss:APIAccessAll"], [collection_arn]),
    ]


class Indexer(pulumi.ComponentResource):
    def __init__(self, name: str, args: IndexerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:Indexer", name, None, opts)
        cfg = args.config
        self.log_group = log_group(f"{name}-logs", cfg.observability.log_retention_days, self)
        self.policy = inline_policy(
            f"{name}-policy",
            args.role,
            indexer_statements(args.ingest, self.log_group.arn, args.collection_arn)
            + args.vpc_statements,
            self,
        )
        environment = env.indexer_environment(
            cfg,
            args.collection_endpoint,
            args.ingest.queue.url,
            args.ingest.dead_letter_queue.url,
            args.ingest.visibility_timeout,
            args.ingest.bucket.bucket,
            args.ingest.status_table.name,
        )
        spec = FunctionSpec(
            handler=HANDLER,
            timeout=cfg.indexer.timeout_seconds,
            memory_mb=cfg.indexer.memory_mb,
            environment=environment,
            in_vpc=cfg.uses_vpc,
        )
        self.function = service_function(
            f"{name}-function",
            cfg,
            spec,
            args.code,
            args.role,
            self.log_group,
            self,
            depends_on=[self.policy],
        )
        self.event_source = aws.lambda_.EventSourceMapping(
            f"{name}-sqs",
            event_source_arn=args.ingest.queue.arn,
            function_name=self.function.arn,
            batch_size=cfg.indexer.batch_size,
            maximum_batching_window_in_seconds=cfg.indexer.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=cfg.indexer.max_concurrency
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.schedule: aws.cloudwatch.EventRule | None = None
        if cfg.indexer.reconcile_schedule:
            self._schedule_reconcile(name, cfg.indexer.reconcile_schedule)
        self.register_outputs({"function": self.function.name})

    def _schedule_reconcile(self, name: str, expression: str) -> None:
        """EventBridge invokes the indexer with the reconcile event; only this rule may."""
        child = pulumi.ResourceOptions(parent=self)
        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-reconcile",
            description="Repair drift between document status records and the index",
            schedule_expression=expression,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-reconcile-target",
            rule=self.schedule.name,
            arn=self.function.arn,
            input=RECONCILE_INPUT,
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-reconcile-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=self.schedule.arn,
            opts=child,
        )
