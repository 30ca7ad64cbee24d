"""Fills for the stage's data: DynamoDB tables and S3 buckets.

moto 5.2.5's own models (moto/dynamodb/models/table.py, moto/s3/models.py) leave out what the template
asks for: a table's ``TimeToLiveSpecification`` and ``PointInTimeRecoverySpecification`` are ignored,
its ``SSESpecification`` is read under the API's key (``Enabled``) instead of CloudFormation's
(``SSEEnabled``), so ``describe_table`` shows no encryption, and a changed table is dropped from the
stack (no update); a bucket's ``PublicAccessBlockConfiguration``, ``CorsConfiguration`` and
``LifecycleConfiguration`` are ignored, and deleting a bucket that holds objects succeeds in silence.
These fills call the same backends the API does, so ``describe_table``, ``describe_time_to_live``,
``describe_continuous_backups``, ``get_public_access_block``, ``get_bucket_encryption``,
``get_bucket_cors`` and ``get_bucket_lifecycle_configuration`` answer what the template says.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import S3Backend, s3_backends

from localstage.cloudformation.model import Filled, FillError, Json, ResourceFill, Where, flag

ALL_SETTINGS = frozenset(
    {
        "BillingMode",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification",
        "SSESpecification",
        "DeletionProtectionEnabled",
    }
)


class TableFill(ResourceFill):
    TYPE = "AWS::DynamoDB::Table"
    NAME_PROPERTY = "TableName"
    PROPERTIES = ALL_SETTINGS | {"TableName", "KeySchema"}
    REQUIRED = frozenset({"KeySchema", "AttributeDefinitions", "BillingMode"})
    REPLACE_ON = frozenset({"TableName", "KeySchema"})
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _dynamodb(where)
        if name in backend.tables:
            raise cls.already_exists(name)
        _on_demand(props)
        table = backend.create_table(
            name,
            schema=props["KeySchema"],
            throughput=None,
            attr=props["AttributeDefinitions"],
            global_indexes=props.get("GlobalSecondaryIndexes", []),
            indexes=[],
            streams=None,
            billing_mode="PAY_PER_REQUEST",
            sse_specification=_sse(props),
            tags=[],
            deletion_protection_enabled=flag(props.get("DeletionProtectionEnabled", False)),
            warm_throughput=None,
        )
        try:
            _settle(backend, name, props, frozenset({"TimeToLiveSpecification", "PointInTimeRecoverySpecification"}))
        except Exception:  # CloudFormation leaves nothing half made: the table goes, the failure stands
            backend.delete_table(name)
            raise
        return cls.made(where, name, props, Arn=table.table_arn)

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        _on_demand(props)
        _settle(_dynamodb(resource.where), resource.physical_resource_id, props, changed)

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _dynamodb(resource.where)
        if resource.physical_resource_id in backend.tables:  # already gone counts as deleted
            backend.delete_table(resource.physical_resource_id)  # refuses while deletion protection is on


def _dynamodb(where: Where) -> DynamoDBBackend:
    return dynamodb_backends[where.account_id][where.region_name]


def _on_demand(props: Json) -> None:
    # Provisioned capacity (ProvisionedThroughput, per-index throughput) has no fill; say so.
    if props["BillingMode"] != "PAY_PER_REQUEST":
        raise FillError(f"AWS::DynamoDB::Table BillingMode {props['BillingMode']}: only PAY_PER_REQUEST is applied")


def _sse(props: Json) -> Json | None:
    """CloudFormation's SSESpecification as the table model keeps the API's (``Enabled``)."""
    spec = props.get("SSESpecification") or {}
    unknown = set(spec) - {"SSEEnabled", "SSEType", "KMSMasterKeyId"}
    if unknown:
        raise FillError(f"AWS::DynamoDB::Table SSESpecification.{', '.join(sorted(unknown))} is not applied")
    if not flag(spec.get("SSEEnabled", False)):
        return None  # encrypted with an AWS-owned key, which describe_table does not show
    api: Json = {"Enabled": True, "SSEType": spec.get("SSEType", "KMS")}
    if "KMSMasterKeyId" in spec:
        api["KMSMasterKeyId"] = spec["KMSMasterKeyId"]
    return api


def _settle(backend: DynamoDBBackend, name: str, props: Json, changed: frozenset[str]) -> None:
    """Make the table match ``props`` for every setting in ``changed`` (an absent one is switched off)."""
    table = backend.get_table(name)
    if changed & {"GlobalSecondaryIndexes", "AttributeDefinitions"}:
        updates = _index_updates(table, props.get("GlobalSecondaryIndexes", []))
        backend.update_table(name, props["AttributeDefinitions"], updates, {}, "", {}, None, None)
    if "DeletionProtectionEnabled" in changed:
        protected = flag(props.get("DeletionProtectionEnabled", False))
        backend.update_table(name, [], [], {}, "", {}, protected, None)
    if "SSESpecification" in changed:
        sse = _sse(props)
        if sse is not None and "KMSMasterKeyId" not in sse:
            # What the table model does at creation: the account's aws/dynamodb key, made on first use.
            sse["KMSMasterKeyId"] = table._get_default_encryption_key(table.account_id, table.region_name)
        table.sse_specification = sse  # update_table takes no SSESpecification in moto 5.2.5
    if "TimeToLiveSpecification" in changed:
        ttl = props.get("TimeToLiveSpecification")
        if ttl is not None:
            backend.update_time_to_live(name, {"Enabled": flag(ttl["Enabled"]), "AttributeName": ttl["AttributeName"]})
        elif table.ttl.get("TimeToLiveStatus") == "ENABLED":
            backend.update_time_to_live(name, {"Enabled": False, "AttributeName": table.ttl["AttributeName"]})
    if "PointInTimeRecoverySpecification" in changed:
        pitr = props.get("PointInTimeRecoverySpecification") or {}
        spec: Json = {"PointInTimeRecoveryEnabled": flag(pitr.get("PointInTimeRecoveryEnabled", False))}
        if "RecoveryPeriodInDays" in pitr:
            spec["RecoveryPeriodInDays"] = int(pitr["RecoveryPeriodInDays"])
        backend.update_continuous_backups(name, spec)


def _index_updates(table: Any, wanted: list[Json]) -> list[Json]:
    """The GSI creations and deletions that turn the table's indexes into ``wanted``.

    As on AWS, an existing index cannot change its keys or projection in place: CloudFormation
    refuses, and a new index (another name) is the way.
    """
    have = {index.name: index for index in table.global_indexes}
    want = {index["IndexName"]: index for index in wanted}
    for name in have.keys() & want.keys():
        if have[name].schema != want[name]["KeySchema"] or have[name].projection != want[name]["Projection"]:
            raise FillError(
                f"Cannot update GSI's properties other than Provisioned Throughput and Contributor Insights "
                f"Specification ({name}). You can create a new GSI with a different name."
            )
    return [{"Delete": {"IndexName": name}} for name in sorted(have.keys() - want.keys())] + [
        {"Create": want[name]} for name in sorted(want.keys() - have.keys())
    ]


class BucketFill(ResourceFill):
    TYPE = "AWS::S3::Bucket"
    NAME_PROPERTY = "BucketName"
    PROPERTIES = frozenset(
        {
            "BucketName",
            "PublicAccessBlockConfiguration",
            "BucketEncryption",
            "CorsConfiguration",
            "LifecycleConfiguration",
        }
    )
    REPLACE_ON = frozenset({"BucketName"})
    ATTRIBUTES = frozenset({"Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL"})
    SETTINGS = PROPERTIES - {"BucketName"}

    @classmethod
    def create(cls, where: Where, name: str, props: Json) -> Filled:
        backend = _s3(where)
        if _bucket(backend, name) is not None:
            raise cls.already_exists(name)
        bucket = backend.create_bucket(name, where.region_name)
        try:
            _configure(backend, name, props, cls.SETTINGS)
        except Exception:  # nothing half made, as for a table
            backend.delete_bucket(name)
            raise
        return cls.made(
            where,
            name,
            props,
            Arn=bucket.arn,
            DomainName=bucket.domain_name,
            DualStackDomainName=bucket.dual_stack_domain_name,
            RegionalDomainName=bucket.regional_domain_name,
            WebsiteURL=bucket.website_url,
        )

    @classmethod
    def update(cls, resource: Filled, props: Json, changed: frozenset[str]) -> None:
        _configure(_s3(resource.where), resource.physical_resource_id, props, changed)

    @classmethod
    def delete(cls, resource: Filled) -> None:
        backend = _s3(resource.where)
        bucket = _bucket(backend, resource.physical_resource_id)
        if bucket is None:
            return
        if bucket.keys:  # moto's delete_bucket returns None here and deletes nothing; AWS refuses
            raise FillError(f"BucketNotEmpty: The bucket you tried to delete is not empty ({bucket.name})")
        backend.delete_bucket(bucket.name)


def _s3(where: Where) -> S3Backend:
    return s3_backends[where.account_id][where.partition]


def _bucket(backend: S3Backend, name: str) -> Any:
    try:
        return backend.get_bucket(name)
    except MissingBucket:
        return None


def _configure(backend: S3Backend, name: str, props: Json, changed: frozenset[str]) -> None:
    """Make the bucket match ``props`` for each setting in ``changed`` (an absent one is removed)."""
    if "PublicAccessBlockConfiguration" in changed:
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(name, {key: flag(value) for key, value in block.items()})
        else:
            backend.delete_public_access_block(name)
    if "BucketEncryption" in changed:
        encryption = props.get("BucketEncryption")
        if encryption:
            backend.put_bucket_encryption(name, _encryption(encryption))
        else:
            backend.delete_bucket_encryption(name)
    if "CorsConfiguration" in changed:
        cors = props.get("CorsConfiguration")
        if cors:
            backend.put_bucket_cors(name, [_cors_rule(rule) for rule in cors["CorsRules"]])
        else:
            backend.delete_bucket_cors(name)
    if "LifecycleConfiguration" in changed:
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            backend.put_bucket_lifecycle_configuration(name, lifecycle_api_rules(lifecycle))
        else:
            backend.delete_bucket_lifecycle(name)


def lifecycle_api_rules(lifecycle: Json) -> list[Json]:
    """CloudFormation's ``LifecycleConfiguration`` as ``PutBucketLifecycleConfiguration``'s rules (the
    expiration and multipart-abort rules the stage declares; any other key is refused, not dropped)."""
    rules = []
    for rule in lifecycle.get("Rules", []):
        unknown = set(rule) - {"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload"}
        if unknown:
            raise FillError(f"AWS::S3::Bucket lifecycle rule keys {sorted(unknown)} are not applied locally")
        api: Json = {"ID": rule.get("Id", ""), "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(api)
    return rules


def _encryption(encryption: Json) -> Json:
    """CloudFormation's BucketEncryption as moto's S3 keeps the API's XML (one default rule)."""
    rules = encryption["ServerSideEncryptionConfiguration"]
    by_default = rules[0].get("ServerSideEncryptionByDefault", {}) if len(rules) == 1 else None
    if (
        by_default is None
        or set(rules[0]) != {"ServerSideEncryptionByDefault"}
        or set(by_default)
        - {
            "SSEAlgorithm",
            "KMSMasterKeyID",
        }
    ):
        raise FillError("AWS::S3::Bucket BucketEncryption: only one ServerSideEncryptionByDefault rule is applied")
    return {"Rule": {"ApplyServerSideEncryptionByDefault": dict(by_default)}}


_CORS_KEYS = {  # CloudFormation's CorsRule -> the API's
    "AllowedOrigins": "AllowedOrigin",
    "AllowedMethods": "AllowedMethod",
    "AllowedHeaders": "AllowedHeader",
    "ExposedHeaders": "ExposeHeader",
    "MaxAge": "MaxAgeSeconds",
    "Id": "ID",
}


def _cors_rule(rule: Json) -> Json:
    unknown = set(rule) - set(_CORS_KEYS)
    if unknown:
        raise FillError(f"AWS::S3::Bucket CorsRule {', '.join(sorted(unknown))} is not applied")
    return {_CORS_KEYS[key]: str(value) if key == "MaxAge" else value for key, value in rule.items()}
