"""The scheduled reconcile run: EventBridge rule → the indexer function (only that
rule may invoke it), the grants it needs and no more, the drift alarm, the
tombstone TTL."""

from __future__ import annotations

import json

from infra.components.indexer import RECONCILE_INPUT
from infra.components.observability import DRIFT_NAMESPACE
from infra.config import StackConfig
from services.indexer.lambda_handler import is_reconcile_event
from shared.settings import IndexerSettings
from tests.infra.mocks import Deployment
from tests.infra.test_policies_audit import role_policies

FUNCTION = "aws:lambda/function:Function"


def test_the_schedule_invokes_the_indexer_with_the_reconcile_event(
    variant: tuple[StackConfig, Deployment],
) -> None:
    config, d = variant
    rules = d.of_type("aws:cloudwatch/eventRule:EventRule")
    permissions = [
        p
        for p in d.of_type("aws:lambda/permission:Permission")
        if p.inputs["principal"] == "events.amazonaws.com"
    ]
    if config.indexer.reconcile_schedule is None:
        assert rules == [] and permissions == []
        return
    [rule] = rules
    assert rule.inputs["scheduleExpression"] == config.indexer.reconcile_schedule
    [target] = d.of_type("aws:cloudwatch/eventTarget:EventTarget")
    indexer = d.one(FUNCTION, "indexer-function").state
    assert target.inputs["arn"] == indexer["arn"]
    assert target.inputs["rule"] == rule.state["name"]
    assert is_reconcile_event(json.loads(target.inputs["input"]))
    assert target.inputs["input"] == RECONCILE_INPUT
    [permission] = permissions
    assert permission.inputs["sourceArn"] == rule.state["arn"]  # this rule only
    assert permission.inputs["function"] == indexer["name"]
    assert permission.inputs["action"] == "lambda:InvokeFunction"


def test_the_indexer_may_requeue_to_its_own_queue_and_scan_its_status_table_only(
    variant: tuple[StackConfig, Deployment],
) -> None:
    _, d = variant
    grants = role_policies(d)["indexer-role"]
    queue = d.one("aws:sqs/queue:Queue", "ingest-queue").state["arn"]
    status = d.one("aws:dynamodb/table:Table", "ingest-status").state["arn"]
    assert grants["RequeueDriftedDocuments"]["Action"] == ["sqs:SendMessage"]
    assert grants["RequeueDriftedDocuments"]["Resource"] == [queue]
    assert "dynamodb:Scan" in grants["DocumentStatus"]["Action"]
    assert grants["DocumentStatus"]["Resource"] == [status]
    assert "RequeueDriftedDocuments" not in role_policies(d)["query-role"]


def test_drift_raises_an_alarm_on_the_metric_the_indexer_emits(
    variant: tuple[StackConfig, Deployment],
) -> None:
    config, d = variant
    alarms = {a.name: a.inputs for a in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    if config.indexer.reconcile_schedule is None:
        assert "observability-index-drift" not in alarms
        return
    drift = alarms["observability-index-drift"]
    assert drift["namespace"] == DRIFT_NAMESPACE == IndexerSettings().metrics_namespace
    assert drift["metricName"] == "DriftFound"
    indexer = d.one(FUNCTION, "indexer-function").state["name"]
    assert drift["dimensions"] == {"FunctionName": indexer}
    assert (drift["comparisonOperator"], drift["threshold"]) == ("GreaterThanThreshold", 0)
    topic = config.observability.alarm_topic_arn
    assert drift.get("alarmActions", []) == ([topic] if topic else [])


def test_tombstones_and_leases_expire_by_ttl_and_the_function_is_an_output(
    variant: tuple[StackConfig, Deployment],
) -> None:
    _, d = variant
    table = d.one("aws:dynamodb/table:Table", "ingest-status").inputs
    assert table["ttl"] == {"attributeName": "ttl_epoch", "enabled": True}
    assert d.outputs["indexer_function"] == d.one(FUNCTION, "indexer-function").state["name"]
