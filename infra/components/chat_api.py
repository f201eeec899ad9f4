"""The WebSocket chat API: API Gateway v2, the query Lambda, the stage and its logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import env, policies
from infra.components.auth import ConnectAuth
from infra.components.ingest import visibility_timeout
from infra.components.lambdas import (
    CodeLocation,
    FunctionSpec,
    inline_policy,
    log_group,
    service_function,
)
from infra.config import StackConfig

HANDLER = "services.query.transports.lambda_handler.handler"
# The worker is an asynchronous self-invocation. Lambda would retry a failed one
# twice and keep an event up to 6 hours; a replay would stream the answer again
# to a client that has long moved on. No retries, and drop events older than a
# minute (the smallest age Lambda accepts); the worker also claims its job
# idempotently in the state table (services/query/dynamodb_state.py).
WORKER_MAX_RETRIES = 0
WORKER_MAX_EVENT_AGE_S = 60
# Lambda records a worker event it drops (expired while throttled, or failed) to
# an on-failure destination; this queue holds those records until the function
# reads them back and tells the client its answer could not run. An hour-old
# failure is no news to anyone: drop it then.
WORKER_FAILURES_RETENTION_S = 3600
ROUTES = ("$connect", "$disconnect", "$default")
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "connectionId": "$context.connectionId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTimeEpoch",
        "error": "$context.error.message",
        "integrationError": "$context.integration.error",
        "authorizerError": "$context.authorizer.error",
    }
)


@dataclass(frozen=True)
class ChatApiArgs:
    config: StackConfig
    code: CodeLocation
    role: aws.iam.Role
    auth: ConnectAuth | None
    collection_arn: pulumi.Input[str]
    collection_endpoint: pulumi.Input[str]
    model_environment: dict[str, pulumi.Input[str]]
    model_statements: list[dict[str, Any]]
    vpc_statements: list[dict[str, Any]]
    account: pulumi.Output[str]
    partition: pulumi.Output[str]
    protect: bool = False


class ChatApi(pulumi.ComponentResource):
    authorizer: aws.apigatewayv2.Authorizer | None = None

    def __init__(self, name: str, args: ChatApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:ChatApi", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        stage_name = cfg.chat.stage_name
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
            opts=child,
        )
        self.log_group = log_group(f"{name}-query-logs", cfg.observability.log_retention_days, self)
        # In-flight requests, cancellations and conversation turns; items expire by TTL.
        self.state_table = aws.dynamodb.Table(
            f"{name}-state",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name="pk", type="S"),
                aws.dynamodb.TableAttributeArgs(name="sk", type="S"),
            ],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="expires_at", enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.base_policy = inline_policy(
            f"{name}-query-policy",
            args.role,
            [
                policies.log_statement(self.log_group.arn),
                policies.statement(
                    "OpenSearchServerless", ["aoss:APIAccessAll"], [args.collection_arn]
                ),
                policies.statement(
                    "QueryState",
                    [
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                    ],
                    [self.state_table.arn],
                ),
                *args.model_statements,
                *args.vpc_statements,
            ],
            self,
        )
        spec = FunctionSpec(
            handler=HANDLER,
            timeout=cfg.chat.query_timeout_seconds,
            memory_mb=cfg.chat.query_memory_mb,
            environment=env.query_environment(
                cfg, args.collection_endpoint, args.model_environment, self.state_table.name
            ),
            in_vpc=cfg.uses_vpc,
        )
        self.function = service_function(
            f"{name}-query", cfg, spec, args.code, args.role, self.log_group, self,
            depends_on=[self.base_policy],
        )  # fmt: skip
        self._worker_failures(name, cfg, args.role)
        self.integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=self.api.id,
            # Lambda proxy; AWS requires POST for any Lambda integration (the Invoke
            # action), whatever the route. Mocks and moto accept it missing; AWS does not.
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=self.function.invoke_arn,
            opts=child,
        )
        target = pulumi.Output.concat("integrations/", self.integration.id)
        if args.auth is not None:
            self.authorizer = self._authorizer(name, args.auth)
        self.routes = {key: self._route(name, key, target) for key in ROUTES}
        aws.lambda_.Permission(
            f"{name}-invoke-query",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.api.execution_arn, f"/{stage_name}/*"),
            opts=child,
        )
        self.stage = self._stage(name, args, [*self.routes.values()])
        self.runtime_policy = inline_policy(
            f"{name}-query-runtime-policy", args.role, self._runtime_statements(), self
        )
        self.register_outputs({"url": self.stage.invoke_url})

    def _worker_failures(self, name: str, cfg: StackConfig, role: aws.iam.Role) -> None:
        """Worker events Lambda drops are recorded to a queue the function reads back.

        Without a destination a dropped event (throttled past its maximum age, or a
        worker that failed) leaves the client waiting forever: nothing posts to it.
        The queue, not the function itself, is the destination so that a record
        made while the account is throttled waits for capacity instead of being
        dropped in turn (an event source mapping retries it).
        """
        child = pulumi.ResourceOptions(parent=self)
        self.worker_failures = aws.sqs.Queue(
            f"{name}-worker-failures",
            message_retention_seconds=WORKER_FAILURES_RETENTION_S,
            # As for any Lambda-read queue (its event source mapping has no batching window).
            visibility_timeout_seconds=visibility_timeout(cfg.chat.query_timeout_seconds, 0),
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        queue = self.worker_failures.arn
        # Lambda sends the record with the function's role; AWS checks both grants
        # when the invoke config and the event source mapping are created.
        policy = inline_policy(
            f"{name}-worker-failures-policy",
            role,
            [
                policies.statement("RecordFailedWorkers", ["sqs:SendMessage"], [queue]),
                policies.statement("ReadFailedWorkers", policies.QUEUE_CONSUMER_ACTIONS, [queue]),
            ],
            self,
        )
        after_policy = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        self.worker_invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-worker-invoke-config",
            function_name=self.function.name,
            maximum_retry_attempts=WORKER_MAX_RETRIES,
            maximum_event_age_in_seconds=WORKER_MAX_EVENT_AGE_S,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=queue
                )
            ),
            opts=after_policy,
        )
        self.worker_failures_source = aws.lambda_.EventSourceMapping(
            f"{name}-worker-failures-source",
            event_source_arn=queue,
            function_name=self.function.arn,
            batch_size=10,
            function_response_types=["ReportBatchItemFailures"],
            opts=after_policy,
        )

    def _route(self, name: str, key: str, target: pulumi.Output[str]) -> aws.apigatewayv2.Route:
        # Only $connect is authorized: the other routes run on an accepted connection.
        authorizer = self.authorizer if key == "$connect" else None
        return aws.apigatewayv2.Route(
            f"{name}-route-{key.strip('$')}",
            api_id=self.api.id,
            route_key=key,
            target=target,
            authorization_type="CUSTOM" if authorizer else "NONE",
            authorizer_id=authorizer.id if authorizer else None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _authorizer(self, name: str, auth: ConnectAuth) -> aws.apigatewayv2.Authorizer:
        # No identity source: the token may come from the query string or one of two
        # headers, and a listed-but-missing source would refuse the request before the
        # function could look elsewhere (this also disables result caching).
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-authorizer",
            api_id=self.api.id,
            authorizer_type="REQUEST",
            authorizer_uri=auth.function.invoke_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.lambda_.Permission(
            f"{name}-invoke-authorizer",
            action="lambda:InvokeFunction",
            function=auth.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.api.execution_arn, "/authorizers/", authorizer.id),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return authorizer

    def _stage(
        self, name: str, args: ChatApiArgs, routes: list[aws.apigatewayv2.Route]
    ) -> aws.apigatewayv2.Stage:
        cfg = args.config
        depends: list[pulumi.Resource] = [*routes]
        access_logs = None
        if cfg.chat.api_logs:
            # Needs the account-wide CloudWatch role (else API Gateway refuses the stage).
            retention = cfg.observability.log_retention_days
            self.access_logs = log_group(f"{name}-access-logs", retention, self)
            # Created here (with retention) instead of letting API Gateway create it forever.
            execution_logs = aws.cloudwatch.LogGroup(
                f"{name}-execution-logs",
                name=pulumi.Output.format(
                    "API-Gateway-Execution-Logs_{0}/{1}", self.api.id, cfg.chat.stage_name
                ),
                retention_in_days=retention,
                opts=pulumi.ResourceOptions(parent=self),
            )
            depends.append(execution_logs)
            access_logs = aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=self.access_logs.arn, format=ACCESS_LOG_FORMAT
            )
            if cfg.chat.account_log_role == "create":
                depends.append(self._account_log_role(name, args, execution_logs))
        return aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name=cfg.chat.stage_name,
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=cfg.chat.throttling_rate_limit,
                throttling_burst_limit=cfg.chat.throttling_burst_limit,
                logging_level="ERROR" if access_logs is not None else "OFF",
                # Message bodies are users' questions: never log them.
                data_trace_enabled=False,
                detailed_metrics_enabled=True,
            ),
            access_log_settings=access_logs,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    def _account_log_role(
        self, name: str, args: ChatApiArgs, execution_logs: aws.cloudwatch.LogGroup
    ) -> aws.apigateway.Account:
        """API Gateway writes WebSocket logs with one account-wide role (per region)."""
        role = aws.iam.Role(
            f"{name}-apigw-logs-role",
            assume_role_policy=policies.to_json(policies.assume_role("apigateway.amazonaws.com")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        groups = [self.access_logs.arn, execution_logs.arn]
        policy = inline_policy(
            f"{name}-apigw-logs-policy",
            role,
            [
                policies.statement(
                    "WriteApiLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    [*groups, *(pulumi.Output.concat(g, ":*") for g in groups)],
                ),
                # API Gateway looks its groups up by name; scoped to this account and region.
                policies.statement(
                    "FindLogGroups",
                    ["logs:DescribeLogGroups"],
                    [
                        pulumi.Output.format(
                            "arn:{0}:logs:{1}:{2}:log-group:*",
                            args.partition,
                            args.config.region,
                            args.account,
                        )
                    ],
                ),
            ],
            self,
        )
        return aws.apigateway.Account(
            f"{name}-apigw-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _runtime_statements(self) -> list[dict[str, Any]]:
        connections = pulumi.Output.concat(self.stage.execution_arn, "/POST/@connections/*")
        return [
            # Post tokens to (and close) connections of this API's stage only.
            policies.statement(
                "ManageOwnConnections",
                ["execute-api:ManageConnections"],
                [
                    connections,
                    pulumi.Output.concat(self.stage.execution_arn, "/DELETE/@connections/*"),
                ],
            ),
            # Long answers continue in an asynchronous invocation of the same function.
            # (its invoked ARN may carry a version/alias qualifier: ":*" covers only those).
            policies.statement(
                "InvokeSelf",
                ["lambda:InvokeFunction"],
                [self.function.arn, pulumi.Output.concat(self.function.arn, ":*")],
            ),
        ]
