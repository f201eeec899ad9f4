"""CloudWatch alarms for what needs a human: poisoned messages, a stalled queue, failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import ObservabilityConfig

PERIOD_SECONDS = 300
# Where the indexer's reconcile run reports drift (EMF; RAG_INDEXER__METRICS_NAMESPACE).
DRIFT_NAMESPACE = "RAG/Indexer"


@dataclass(frozen=True)
class ObservabilityArgs:
    config: ObservabilityConfig
    queue_name: pulumi.Input[str]
    dlq_name: pulumi.Input[str]
    function_names: Mapping[str, pulumi.Input[str]]
    # The indexer function whose scheduled reconcile reports drift (None: no schedule).
    reconcile_function: pulumi.Input[str] | None = None


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rag:infra:Observability", name, None, opts)
        actions = [args.config.alarm_topic_arn] if args.config.alarm_topic_arn else []
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}

        def alarm(key: str, description: str, **kwargs: Any) -> None:
            self.alarms[key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{key}",
                alarm_description=description,
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                # No data means no traffic, which is not a failure.
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(parent=self),
                **kwargs,
            )

        alarm(
            "dlq-depth",
            "Messages reached the ingest dead-letter queue (see their reason attribute).",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": args.dlq_name},
            statistic="Maximum",
            comparison_operator="GreaterThanThreshold",
            threshold=0,
        )
        alarm(
            "oldest-message-age",
            "The ingest queue is not being drained (indexer failing or throttled).",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": args.queue_name},
            statistic="Maximum",
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=args.config.oldest_message_age_seconds,
        )
        if args.reconcile_function is not None:
            alarm(
                "index-drift",
                "The reconciler found the index drifted from the status records "
                "(see the indexer's 'drift' log lines for what it repaired).",
                namespace=DRIFT_NAMESPACE,
                metric_name="DriftFound",
                dimensions={"FunctionName": args.reconcile_function},
                statistic="Maximum",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
            )
        for key, function_name in sorted(args.function_names.items()):
            alarm(
                f"{key}-errors",
                f"The {key} Lambda function reported errors.",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": function_name},
                statistic="Sum",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
            )
        self.register_outputs({})
