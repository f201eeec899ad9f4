"""CloudWatch alarms for what needs a human: poisoned messages, a stalled queue, failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
    # The function whose asynchronous worker events carry answers (the query function).
    worker_function: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm on one metric: above ``threshold`` (at or above with ``or_equal``)
    over a 5-minute period."""

    key: str
    description: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str = "Maximum"
    threshold: pulumi.Input[float] = 0
    or_equal: bool = False


def alarm_specs(args: ObservabilityArgs) -> list[AlarmSpec]:
    """Every alarm of the stack, in creation order."""
    specs = [
        AlarmSpec(
            "dlq-depth",
            "Messages reached the ingest dead-letter queue (see their reason attribute).",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": args.dlq_name},
        ),
        AlarmSpec(
            "oldest-message-age",
            "The ingest queue is not being drained (indexer failing or throttled).",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": args.queue_name},
            threshold=args.config.oldest_message_age_seconds,
            or_equal=True,
        ),
    ]
    if args.reconcile_function is not None:
        specs.append(
            AlarmSpec(
                "index-drift",
                "The reconciler found the index drifted from the status records "
                "(see the indexer's 'drift' log lines for what it repaired).",
                DRIFT_NAMESPACE,
                "DriftFound",
                {"FunctionName": args.reconcile_function},
            )
        )
    if args.worker_function is not None:
        worker = {"FunctionName": args.worker_function}
        specs += [
            # Lambda's asynchronous invocation metrics: each dropped worker event is
            # an answer that never started (clients get an error, not the answer).
            AlarmSpec(
                "answers-dropped",
                "Lambda dropped worker events of the query function (throttled past "
                "their 60 s maximum age, or the worker failed): those questions got "
                "an error instead of an answer.",
                "AWS/Lambda",
                "AsyncEventsDropped",
                worker,
                statistic="Sum",
            ),
            # A record that can't reach the on-failure queue means a silent client again.
            AlarmSpec(
                "answer-failures-undelivered",
                "Lambda could not record dropped worker events to the worker-failures "
                "queue: those clients were told nothing.",
                "AWS/Lambda",
                "DestinationDeliveryFailures",
                worker,
                statistic="Sum",
            ),
        ]
    specs += [
        AlarmSpec(
            f"{key}-errors",
            f"The {key} Lambda function reported errors.",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": function_name},
            statistic="Sum",
        )
        for key, function_name in sorted(args.function_names.items())
    ]
    return specs


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rag:infra:Observability", name, None, opts)
        actions = [args.config.alarm_topic_arn] if args.config.alarm_topic_arn else []
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in alarm_specs(args):
            comparison = (
                "GreaterThanOrEqualToThreshold" if spec.or_equal else "GreaterThanThreshold"
            )
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=spec.dimensions,
                statistic=spec.statistic,
                comparison_operator=comparison,
                threshold=spec.threshold,
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                # No data means no traffic, which is not a failure.
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
