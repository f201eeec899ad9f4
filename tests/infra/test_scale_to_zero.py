"""Issue #22 (idle costs nothing on dev) and #26 item 4 (a refused endpoint blocks nothing),
under Pulumi mocks.

dev: a NextGen collection in a collection group with minimum OCU 0, and Llama 2 as an
inference component on an endpoint that scales to zero instances (scaling target with
minimum 0, a target-tracking policy, a step policy on the no-capacity alarm). Any other
stack, or an always-on config: today's classic collection and plain endpoint, and none
of those resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import env
from infra.config import StackConfig, parse_config
from tests.infra.mocks import ACCOUNT, REGION, Deployment, deploy, fake_artifacts
from tests.infra.variants import STATIC_TOKEN

GROUP = "aws:opensearch/serverlessCollectionGroup:ServerlessCollectionGroup"
COLLECTION = "aws:opensearch/serverlessCollection:ServerlessCollection"
COMPONENT = "aws-native:sagemaker:InferenceComponent"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FUNCTION = "aws:lambda/function:Function"
SCALE_TO_ZERO_TYPES = (GROUP, COMPONENT, TARGET, POLICY)


def sagemaker(**sections: Any) -> StackConfig:
    model = {"acceptEula": True, **sections.pop("model", {})}
    return StackConfig.model_validate({"region": REGION, "model": model, **sections})


def deployed(tmp_path: Path, config: StackConfig, stack: str = "dev") -> Deployment:
    return deploy(config, fake_artifacts(tmp_path), static_token=STATIC_TOKEN, stack=stack)


def variables(d: Deployment, function: str) -> dict[str, str]:
    env_vars: dict[str, str] = d.one(FUNCTION, function).inputs["environment"]["variables"]
    return env_vars


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return deployed(tmp_path_factory.mktemp("dev"), sagemaker())


# ---- dev: the collection scales to zero ------------------------------------------


def test_dev_collection_lives_in_a_nextgen_group_with_minimum_zero(dev: Deployment) -> None:
    group = dev.one(GROUP).inputs
    assert group["generation"] == "NEXTGEN"
    assert group["standbyReplicas"] == "ENABLED"  # AWS requires it for NEXTGEN
    (limits,) = group["capacityLimits"]
    assert limits["minIndexingCapacityInOcu"] == 0
    assert limits["minSearchCapacityInOcu"] == 0
    assert limits["maxIndexingCapacityInOcu"] >= 2 and limits["maxSearchCapacityInOcu"] >= 2
    collection = dev.one(COLLECTION).inputs
    assert collection["collectionGroupName"] == group["name"] == f"{collection['name']}-grp"
    assert collection["standbyReplicas"] == "ENABLED"
    assert len(group["name"]) <= 32


def test_dev_functions_know_the_collection_kind(dev: Deployment) -> None:
    for function in ("indexer-function", "chat-query"):
        assert variables(dev, function)[env.INDEX_COLLECTION_KIND] == "nextgen"


def test_dev_reconciles_daily_because_each_run_wakes_the_collection(dev: Deployment) -> None:
    rule = dev.one("aws:cloudwatch/eventRule:EventRule").inputs
    assert rule["scheduleExpression"] == "rate(1 day)"


# ---- dev: the model scales to zero ------------------------------------------------


def test_dev_model_is_an_inference_component_on_an_endpoint_of_zero_to_n(dev: Deployment) -> None:
    config = dev.one(ENDPOINT_CONFIG).inputs
    (variant,) = config["productionVariants"]
    assert "modelName" not in variant  # the component names the model
    assert variant["managedInstanceScaling"] == {
        "status": "ENABLED",
        "minInstanceCount": 0,
        "maxInstanceCount": 1,
    }
    assert config["executionRoleArn"] == dev.one("aws:iam/role:Role", "model-role").state["arn"]
    component = dev.one(COMPONENT).inputs
    endpoint = dev.one(ENDPOINT)
    assert component["endpointName"] == endpoint.state["name"] == "rag-dev-llm"
    assert component["variantName"] == variant["variantName"]
    assert component["inferenceComponentName"] == "rag-dev-llm-ic"
    spec = component["specification"]
    assert spec["modelName"] == dev.one("aws:sagemaker/model:Model").state["name"]
    assert spec["computeResourceRequirements"]["numberOfAcceleratorDevicesRequired"] == 1
    assert component["runtimeConfig"] == {"copyCount": 1}
    # aws-native reads `aws-native:region`, not `aws:region`: the stack gives it one
    (native,) = dev.of_type("pulumi:providers:aws-native")
    assert native.inputs["region"] == REGION


def test_dev_scaling_goes_to_zero_and_wakes_on_the_no_capacity_alarm(dev: Deployment) -> None:
    resource_id = "inference-component/rag-dev-llm-ic"
    target = dev.one(TARGET).inputs
    assert target["serviceNamespace"] == "sagemaker"
    assert target["resourceId"] == resource_id
    assert target["scalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["minCapacity"], target["maxCapacity"]) == (0, 1)
    policies = {p.name: p for p in dev.of_type(POLICY)}
    assert set(policies) == {"model-scale-by-streams", "model-wake-from-zero"}
    for policy in policies.values():
        assert policy.inputs["resourceId"] == resource_id
        assert policy.inputs["scalableDimension"] == target["scalableDimension"]
    tracking = policies["model-scale-by-streams"].inputs
    assert tracking["policyType"] == "TargetTrackingScaling"
    step = policies["model-wake-from-zero"]
    config = step.inputs["stepScalingPolicyConfiguration"]
    assert step.inputs["policyType"] == "StepScaling"
    assert config["adjustmentType"] == "ChangeInCapacity"
    assert config["stepAdjustments"] == [{"metricIntervalLowerBound": "0", "scalingAdjustment": 1}]
    alarm = dev.one(ALARM, "model-no-capacity").inputs
    assert alarm["alarmActions"] == [step.state["arn"]]
    assert (alarm["namespace"], alarm["metricName"]) == (
        "AWS/SageMaker",
        "NoCapacityInvocationFailures",
    )
    assert alarm["dimensions"] == {"InferenceComponentName": "rag-dev-llm-ic"}
    # one refused question is enough to wake the model
    assert alarm["threshold"] == 1
    assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["treatMissingData"] == "notBreaching"


def test_dev_query_function_may_wait_for_the_model_and_names_the_component(
    dev: Deployment,
) -> None:
    query = dev.one(FUNCTION, "chat-query").inputs
    assert query["timeout"] == 900  # the first question after idle waits minutes
    assert variables(dev, "chat-query")[env.MODEL_INFERENCE_COMPONENT] == "rag-dev-llm-ic"
    grant_arns = {
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/rag-dev-llm-ic",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/rag-dev-llm",
    }
    policy = dev.one("aws:iam/rolePolicy:RolePolicy", "chat-query-policy").policy()
    invoke = next(s for s in policy["Statement"] if s.get("Sid") == "InvokeChatModel")
    assert set(invoke["Resource"]) == grant_arns


def test_component_logs_have_a_group_the_endpoint_role_may_write(dev: Deployment) -> None:
    group = dev.one("aws:cloudwatch/logGroup:LogGroup", "model-component-logs")
    assert group.inputs["name"] == "/aws/sagemaker/InferenceComponents/rag-dev-llm-ic"
    policy = dev.one("aws:iam/rolePolicy:RolePolicy", "model-policy").policy()
    writes = next(s for s in policy["Statement"] if s["Sid"] == "WriteEndpointLogs")
    assert group.state["arn"] in writes["Resource"]


# ---- always on: today's resources, none of the above --------------------------------


@pytest.mark.parametrize(
    ("stack", "sections"),
    [
        ("prod", {}),  # every stack but dev defaults to always on
        ("dev", {"search": {"collectionKind": "classic"}, "model": {"scaleToZero": False}}),
    ],
)
def test_always_on_keeps_todays_resources(
    tmp_path: Path, stack: str, sections: dict[str, Any]
) -> None:
    d = deployed(tmp_path, sagemaker(**sections), stack=stack)
    for typ in SCALE_TO_ZERO_TYPES:
        assert not d.of_type(typ), typ
    assert [a.name for a in d.of_type(ALARM) if a.name.startswith("model-")] == []
    collection = d.one(COLLECTION).inputs
    assert "collectionGroupName" not in collection
    assert collection["standbyReplicas"] == "DISABLED"
    (variant,) = d.one(ENDPOINT_CONFIG).inputs["productionVariants"]
    assert variant["modelName"] == d.one("aws:sagemaker/model:Model").state["name"]
    assert variant["initialInstanceCount"] == 1
    assert "managedInstanceScaling" not in variant
    query = variables(d, "chat-query")
    assert env.MODEL_INFERENCE_COMPONENT not in query
    assert query[env.INDEX_COLLECTION_KIND] == "classic"
    assert d.one(FUNCTION, "chat-query").inputs["timeout"] == 300


def test_bedrock_dev_still_scales_the_collection_to_zero(tmp_path: Path) -> None:
    config = StackConfig.model_validate({"region": REGION, "model": {"source": "bedrock"}})
    d = deployed(tmp_path, config)
    assert d.one(GROUP).inputs["capacityLimits"][0]["minSearchCapacityInOcu"] == 0
    assert not d.of_type(COMPONENT) and not d.of_type(TARGET) and not d.of_type(ENDPOINT)


# ---- config a real engine would refuse, refused at load ----------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"search": {"collectionKind": "nextgen", "standbyReplicas": False}},
            "AWS requires standby replicas in NextGen collection groups",
        ),
        ({"search": {"minSearchOcu": 3, "maxSearchOcu": 2}}, "rag:search.maxSearchOcu 3"),
        ({"search": {"maxIndexingOcu": 1}}, "greater than or equal to 2"),
        ({"search": {"minIndexingOcu": 0.3}}, "multiple of 0.5 OCU"),
        (
            {"model": {"source": "bedrock", "scaleToZero": True}},
            "pulumi config rm --path rag:model.scaleToZero",
        ),
    ],
)
def test_impossible_scaling_config_is_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="invalid stack config") as raised:
        parse_config({"region": REGION, **values})
    assert message in str(raised.value)


# ---- #26 item 4: a refused CreateEndpoint blocks nothing ---------------------------


def outside_the_model(d: Deployment) -> set[tuple[str, str]]:
    return {
        key
        for key in d.urns.values()
        if not key[0].startswith(("pulumi:", "rag:infra:")) and not key[1].startswith("model-")
    }


@pytest.mark.parametrize("sections", [{}, {"model": {"scaleToZero": False}}])
def test_the_endpoint_is_created_after_everything_else(
    tmp_path: Path, sections: dict[str, Any]
) -> None:
    # GIVEN Pulumi's rule: after a failed create it starts no new operation, so
    # whatever had not started when CreateEndpoint failed (GPU quota 0) is never made.
    d = deployed(tmp_path, sagemaker(**sections))
    # THEN everything outside the model is something the endpoint waits for:
    # in any order the engine may choose, it has all been created before CreateEndpoint.
    before_endpoint = d.waits_for(ENDPOINT, "model-endpoint")
    missing = outside_the_model(d) - before_endpoint
    assert not missing, sorted(missing)
    assert ("aws:lambda/function:Function", "chat-query") in before_endpoint
    assert ("aws:apigatewayv2/stage:Stage", "chat-stage") in before_endpoint
