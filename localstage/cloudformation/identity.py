"""Fills for identity and secrets: the Cognito user pool and its client, the signing-key secret, IAM roles.

moto 5.2.5 has no CloudFormation model for ``AWS::Cognito::UserPool``, ``AWS::Cognito::UserPoolClient`` or
``AWS::SecretsManager::Secret``: they were skipped, and their outputs (``USER_POOL_ID``,
``SIGNING_KEY_SECRET_ID``) came out as nothing. Its ``AWS::IAM::Role`` keeps each inline policy as the
template's object rather than the JSON text IAM stores (``get_role_policy`` and the local stage's IAM
evaluation read text), and its update applies neither the trust policy nor the inline policies (and
reads ``MaxSessionDuration`` from ``RoleDescription``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.cognitoidp.exceptions import ResourceNotFoundError
from moto.cognitoidp.models import CognitoIdpBackend, cognitoidp_backends
from moto.iam.models import IAMBackend, iam_backends
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend, secretsmanager_backends

from localstage.cloudformation.model import Filled, FillError, Json, ResourceFill, Where, as_text, flag

# Properties CloudFormation passes to CreateUserPool / UpdateUserPool under the same names.
POOL_SETTINGS = frozenset(
    {
        "AccountRecoverySetting",
        "AdminCreateUserConfig",
        "AliasAttributes",
        "AutoVerifiedAttributes",
        "DeletionProtection",
        "Policies",
        "Schema",
        "UsernameAttributes",
        "UsernameConfiguration",
        "UserPoolTags",
    }
)


class UserPoolFill(ResourceFill):
    TYPE = "AWS::Cognito::UserPool"
    PROPERTIES = POOL_SETTINGS | {"UserPoolName"}
    REPLACE_ON = frozenset({"AliasAttributes", "Schema", "UsernameAttributes", "UsernameConfiguration"})
    ATTRIBUTES = frozenset({"Arn", "ProviderName", "ProviderURL", "UserPoolId"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        settings = {key: value for key, value in props.items() if key in POOL_SETTINGS}
        pool = _cognito(where).create_user_pool(props.get("UserPoolName", name), settings)
        provider = f"cognito-idp.{where.region_name}.amazonaws.com/{pool.id}"
        return cls.made(
            where,
            pool.id,  # Ref: the pool's id
            props,
            Arn=pool.arn,
            ProviderName=provider,
            ProviderURL=f"https://{provider}",
            UserPoolId=pool.id,
        )

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _cognito(resource.where)
        pool_id = resource.physical_resource_id
        # UpdateUserPool replaces the whole configuration, as CloudFormation's update does.
        backend.update_user_pool(pool_id, {k: v for k, v in props.items() if k in POOL_SETTINGS - {"Schema"}})
        backend.describe_user_pool(pool_id).name = str(
            props.get("UserPoolName", backend.describe_user_pool(pool_id).name)
        )

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _cognito(resource.where)
        pool = backend.user_pools.get(resource.physical_resource_id)
        if pool is None:
            return
        if pool.extended_config.get("DeletionProtection") == "ACTIVE":  # moto deletes it anyway
            raise FillError(
                f"InvalidParameterException: The user pool {pool.id} cannot be deleted (DeletionProtection is ACTIVE)"
            )
        backend.delete_user_pool(pool.id)


def _cognito(where: Where) -> CognitoIdpBackend:
    return cognitoidp_backends[where.account_id][where.region_name]


CLIENT_SETTINGS = frozenset(
    {
        "AccessTokenValidity",
        "AllowedOAuthFlows",
        "AllowedOAuthFlowsUserPoolClient",
        "AllowedOAuthScopes",
        "AuthSessionValidity",
        "CallbackURLs",
        "ClientName",
        "DefaultRedirectURI",
        "EnableTokenRevocation",
        "ExplicitAuthFlows",
        "IdTokenValidity",
        "LogoutURLs",
        "PreventUserExistenceErrors",
        "ReadAttributes",
        "RefreshTokenValidity",
        "SupportedIdentityProviders",
        "TokenValidityUnits",
        "WriteAttributes",
    }
)


class UserPoolClientFill(ResourceFill):
    TYPE = "AWS::Cognito::UserPoolClient"
    PROPERTIES = CLIENT_SETTINGS | {"UserPoolId", "GenerateSecret"}
    REQUIRED = frozenset({"UserPoolId"})
    REPLACE_ON = frozenset({"UserPoolId", "GenerateSecret"})
    ATTRIBUTES = frozenset({"ClientId", "ClientSecret", "Name"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        settings = {key: value for key, value in props.items() if key in CLIENT_SETTINGS}
        generate = flag(props.get("GenerateSecret", False))
        client = _cognito(where).create_user_pool_client(props["UserPoolId"], generate, settings)
        secret = {"ClientSecret": client.secret} if generate else {}
        return cls.made(where, client.id, props, ClientId=client.id, Name=props.get("ClientName"), **secret)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _cognito(resource.where)
        client = backend.describe_user_pool(props["UserPoolId"]).clients[resource.physical_resource_id]
        for key in changed & (CLIENT_SETTINGS - props.keys()):  # UpdateUserPoolClient resets what is not passed
            client.extended_config.pop(key, None)
        backend.update_user_pool_client(
            props["UserPoolId"], client.id, {k: v for k, v in props.items() if k in CLIENT_SETTINGS}
        )
        resource.attributes["Name"] = props.get("ClientName")

    @classmethod
    def delete(cls, resource: Filled) -> None:
        try:
            _cognito(resource.where).delete_user_pool_client(
                resource.properties["UserPoolId"], resource.physical_resource_id
            )
        except ResourceNotFoundError:  # the pool or the client is gone already: deleted
            return


GENERATE_KEYS = frozenset(
    {
        "ExcludeCharacters",
        "ExcludeLowercase",
        "ExcludeNumbers",
        "ExcludePunctuation",
        "ExcludeUppercase",
        "GenerateStringKey",
        "IncludeSpace",
        "PasswordLength",
        "RequireEachIncludedType",
        "SecretStringTemplate",
    }
)


class SecretFill(ResourceFill):
    TYPE = "AWS::SecretsManager::Secret"
    NAME_PROPERTY = "Name"
    PROPERTIES = frozenset({"Name", "Description", "SecretString", "GenerateSecretString"})
    REPLACE_ON = frozenset({"Name"})
    ATTRIBUTES = frozenset({"Id"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _secrets(where)
        if name in backend.secrets:
            raise cls.already_exists(name)
        backend.create_secret(
            name=name,
            secret_string=_secret_value(backend, props),
            secret_binary=None,
            description=props.get("Description"),
            tags=None,
            kms_key_id=None,
            client_request_token=str(uuid.uuid4()),
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.describe_secret(name).arn
        return cls.made(where, arn, props, Id=arn)  # Ref and Id: the secret's ARN

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _secrets(resource.where)
        secret = backend.describe_secret(resource.physical_resource_id)
        if not isinstance(secret, FakeSecret):
            raise FillError(f"AWS::SecretsManager::Secret {secret.name} is a replica; update its primary")
        if "Description" in changed:
            secret.description = props.get("Description")  # moto's UpdateSecret would add a version
        if changed & {"SecretString", "GenerateSecretString"}:  # a new value, as CloudFormation generates one
            value = _secret_value(backend, props)
            backend.put_secret_value(secret.name, value, None, str(uuid.uuid4()), ["AWSCURRENT"])  # type: ignore[arg-type]  # no binary, as the API passes

    @classmethod
    def restore(cls, resource: Filled) -> None:
        # A new value is the last step of update(): a failed update never reached it. Generating one
        # again here would change the key every client signs with.
        cls.update(resource, resource.properties, frozenset({"Description"}))

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _secrets(resource.where)
        if resource.physical_resource_id in backend.secrets:
            # CloudFormation deletes a secret without a recovery window, so the name can be used again.
            backend.delete_secret(resource.physical_resource_id, None, True)


def _secrets(where: Where) -> SecretsManagerBackend:
    return secretsmanager_backends[where.account_id][where.region_name]


def _secret_value(backend: SecretsManagerBackend, props: Json) -> str:
    """``SecretString``, or the value ``GenerateSecretString`` describes (a random password, alone or
    merged into ``SecretStringTemplate`` under ``GenerateStringKey``)."""
    if "SecretString" in props and "GenerateSecretString" in props:
        raise FillError("AWS::SecretsManager::Secret: SecretString and GenerateSecretString are mutually exclusive")
    if "GenerateSecretString" not in props:
        return str(props.get("SecretString", ""))
    spec: Json = props["GenerateSecretString"]
    unknown = set(spec) - GENERATE_KEYS
    if unknown:
        raise FillError(f"AWS::SecretsManager::Secret GenerateSecretString.{', '.join(sorted(unknown))} is not applied")
    password = json.loads(
        backend.get_random_password(
            password_length=int(spec.get("PasswordLength", 32)),
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=flag(spec.get("ExcludeNumbers", False)),
            exclude_punctuation=flag(spec.get("ExcludePunctuation", False)),
            exclude_uppercase=flag(spec.get("ExcludeUppercase", False)),
            exclude_lowercase=flag(spec.get("ExcludeLowercase", False)),
            include_space=flag(spec.get("IncludeSpace", False)),
            require_each_included_type=flag(spec.get("RequireEachIncludedType", True)),
        )
    )["RandomPassword"]
    if ("SecretStringTemplate" in spec) != ("GenerateStringKey" in spec):
        raise FillError("AWS::SecretsManager::Secret: SecretStringTemplate and GenerateStringKey go together")
    if "SecretStringTemplate" not in spec:
        return str(password)
    value = json.loads(spec["SecretStringTemplate"])
    if not isinstance(value, dict):
        raise FillError("AWS::SecretsManager::Secret: SecretStringTemplate must be a JSON object")
    value[spec["GenerateStringKey"]] = password
    return json.dumps(value)


class RoleFill(ResourceFill):
    TYPE = "AWS::IAM::Role"
    NAME_PROPERTY = "RoleName"
    PROPERTIES = frozenset(
        {"RoleName", "AssumeRolePolicyDocument", "Policies", "Description", "Path", "MaxSessionDuration"}
    )
    REQUIRED = frozenset({"AssumeRolePolicyDocument"})
    REPLACE_ON = frozenset({"RoleName", "Path"})
    ATTRIBUTES = frozenset({"Arn", "RoleId"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _iam(where)
        if any(role.name == name for role in backend.roles.values()):
            raise cls.already_exists(name)
        role = backend.create_role(
            name,
            as_text(props["AssumeRolePolicyDocument"]),
            props.get("Path", "/"),
            None,
            props.get("Description", ""),
            [],
            int(props.get("MaxSessionDuration", 3600)),  # type: ignore[arg-type]  # moto annotates str
        )
        try:
            _put_policies(backend, name, props.get("Policies", []), previous=[])
        except Exception:  # nothing half made
            for policy_name in list(role.policies):
                backend.delete_role_policy(name, policy_name)
            backend.delete_role(name)
            raise
        return cls.made(where, name, props, Arn=role.arn, RoleId=role.id)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        backend = _iam(resource.where)
        name = resource.physical_resource_id
        if "AssumeRolePolicyDocument" in changed:
            backend.update_assume_role_policy(name, as_text(props["AssumeRolePolicyDocument"]))
        if changed & {"Description", "MaxSessionDuration"}:
            backend.update_role(name, props.get("Description", ""), int(props.get("MaxSessionDuration", 3600)))  # type: ignore[arg-type]
        if "Policies" in changed:
            _put_policies(backend, name, props.get("Policies", []), previous=list(backend.get_role(name).policies))

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _iam(resource.where)
        name = resource.physical_resource_id
        if not any(role.name == name for role in backend.roles.values()):
            return
        for policy_name in list(backend.get_role(name).policies):  # IAM refuses to delete a role with policies
            backend.delete_role_policy(name, policy_name)
        backend.delete_role(name)


def _iam(where: Where) -> IAMBackend:
    return iam_backends[where.account_id][where.partition]


def _put_policies(backend: IAMBackend, role_name: str, policies: list[Json], previous: list[str]) -> None:
    """The role's inline policies become ``policies`` (IAM keeps each document as JSON text)."""
    wanted: dict[str, Any] = {}
    for policy in policies:
        if set(policy) != {"PolicyName", "PolicyDocument"}:
            raise FillError(
                f"AWS::IAM::Role Policies: each policy has PolicyName and PolicyDocument, got {sorted(policy)}"
            )
        wanted[policy["PolicyName"]] = as_text(policy["PolicyDocument"])
    for policy_name in previous:
        if policy_name not in wanted:
            backend.delete_role_policy(role_name, policy_name)
    for policy_name, document in wanted.items():
        backend.put_role_policy(role_name, policy_name, document)  # validated as IAM validates it
