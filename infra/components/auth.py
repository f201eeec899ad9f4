"""The $connect authorizer: a Lambda checking a static token or a Cognito JWT."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import env, policies
from infra.components.lambdas import (
    CodeLocation,
    FunctionSpec,
    inline_policy,
    lambda_role,
    log_group,
    service_function,
)
from infra.config import StackConfig
from services.query.transports.tokens import hashed_grants, parse_token_grants, token_sha256

HANDLER = "services.query.transports.authorizer.handler"


@dataclass(frozen=True)
class AuthArgs:
    config: StackConfig
    code: CodeLocation
    static_token: pulumi.Output[str] | None
    access_tokens: pulumi.Output[str] | None = None


class ConnectAuth(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool | None = None
    user_pool_client: aws.cognito.UserPoolClient | None = None

    def __init__(self, name: str, args: AuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:ConnectAuth", name, None, opts)
        cfg = args.config
        if cfg.chat.auth == "cognito":
            environment = self._cognito(name, cfg)
        elif args.static_token is not None or args.access_tokens is not None:
            environment = self._token_environment(args)
        else:
            raise ValueError("chat.auth=token needs the rag:accessTokens or rag:staticToken secret")
        self.role = lambda_role(f"{name}-role", self)
        self.log_group = log_group(f"{name}-logs", cfg.observability.log_retention_days, self)
        self.policy = inline_policy(
            f"{name}-policy", self.role, [policies.log_statement(self.log_group.arn)], self
        )
        # Not in the VPC even in VPC mode: it needs only the Cognito JWKS URL.
        spec = FunctionSpec(handler=HANDLER, timeout=10, memory_mb=256, environment=environment)
        self.function = service_function(
            f"{name}-function", cfg, spec, args.code, self.role, self.log_group, self,
            depends_on=[self.policy],
        )  # fmt: skip
        self.register_outputs({"function": self.function.name})

    @staticmethod
    def _token_environment(args: AuthArgs) -> dict[str, pulumi.Input[str]]:
        # Only digests reach the function; the tokens stay Pulumi secrets. A
        # malformed rag:accessTokens fails `pulumi up` here with the reason.
        environment: dict[str, pulumi.Input[str]] = {env.AUTH_MODE: "token"}
        if args.static_token is not None:
            environment[env.AUTH_TOKEN_SHA256] = pulumi.Output.secret(
                args.static_token.apply(token_sha256)
            )
        if args.access_tokens is not None:
            environment[env.AUTH_TOKENS] = pulumi.Output.secret(
                args.access_tokens.apply(lambda raw: hashed_grants(parse_token_grants(raw)))
            )
        return environment

    def _cognito(self, name: str, cfg: StackConfig) -> dict[str, pulumi.Input[str]]:
        child = pulumi.ResourceOptions(parent=self)
        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            # Users are invited by an administrator; nobody signs themselves up.
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=True
            ),
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=False,
                temporary_password_validity_days=3,
            ),
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(
                enabled=True
            ),
            opts=child,
        )
        self.user_pool_client = aws.cognito.UserPoolClient(
            f"{name}-client",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            prevent_user_existence_errors="ENABLED",
            # SRP for browsers; USER_PASSWORD_AUTH so the docs' CLI example can get a token.
            explicit_auth_flows=[
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
            opts=child,
        )
        return {
            env.AUTH_MODE: "cognito",
            env.AUTH_COGNITO_ISSUER: pulumi.Output.concat("https://", self.user_pool.endpoint),
            env.AUTH_COGNITO_CLIENT_ID: self.user_pool_client.id,
        }
