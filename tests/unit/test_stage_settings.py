"""Per-stage settings (infra/stage_settings.py) and what the stage template makes of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.stage_settings import (
    CONFIG_FILE,
    SETTINGS_FILE_VARIABLE,
    StageSettings,
    StageSettingsError,
    load_stage_settings,
    parse_stage_settings,
)
from infra.template import DATA_RESOURCES, stage_template

pytestmark = pytest.mark.unit

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
DOMAIN = {"domain": "example.com", "certificate_arn": CERTIFICATE, "hosted_zone_id": "Z123"}


def test_given_the_committed_config_then_prod_retains_its_data_and_dev_stays_disposable() -> None:
    prod, dev = load_stage_settings("prod", env={}), load_stage_settings("dev", env={})
    assert (prod.retain_data, prod.deletion_policy) == (True, "Retain")
    assert (dev.retain_data, dev.deletion_policy) == (False, "Delete")
    # The CORS origin is the one the API reads: prod's configured origin, never "*"
    config = json.loads(CONFIG_FILE.read_text())["stages"]["prod"]["environment_variables"]
    assert prod.cors_origin == config["CORS_ALLOW_ORIGIN"] != "*"


def test_given_a_settings_file_then_it_is_laid_over_the_config_and_the_argument_beats_the_environment(
    tmp_path: Path,
) -> None:
    # GIVEN two files: one named by the environment, one passed explicitly
    by_env, explicit = tmp_path / "env.json", tmp_path / "arg.json"
    by_env.write_text(json.dumps({"alert_emails": ["env@example.com"]}))
    explicit.write_text(json.dumps({**DOMAIN, "alert_emails": ["oncall@example.com"]}))
    env = {SETTINGS_FILE_VARIABLE: str(by_env)}
    # WHEN prod's settings are loaded with each
    from_env = load_stage_settings("prod", env=env)
    from_arg = load_stage_settings("prod", explicit, env=env)
    # THEN the file's keys apply over the config's (prod keeps retain_data), the argument's first
    assert from_env.alert_emails == ("env@example.com",) and from_env.domain is None and from_env.retain_data
    assert from_arg.alert_emails == ("oncall@example.com",) and from_arg.retain_data
    assert from_arg.domain is not None and from_arg.domain.name("prod") == "api.prod.example.com"
    assert from_arg.domain.base_path == "v1"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"domain": "example.com"}, "go together"),
        ({**DOMAIN, "certificate_arn": "arn:aws:iam::1:server-certificate/x"}, "ACM"),
        ({"alert_emails": ["not-an-address"]}, "alert_emails"),
        ({"alert_endpoints": ["http://hooks.example.com"]}, "https"),
        ({"access_log_retention_days": 10}, "access_log_retention_days"),
        ({"retain_data": "yes"}, "retain_data"),
        ({"abandoned_upload_days": 0}, "abandoned_upload_days"),
        ({"domian": "example.com"}, "unknown"),
    ],
)
def test_given_a_bad_setting_then_loading_refuses_naming_it(values: dict[str, Any], named: str) -> None:
    with pytest.raises(StageSettingsError, match=named):
        parse_stage_settings("prod", values)


def test_given_the_local_stage_then_an_http_alert_endpoint_is_accepted() -> None:
    assert parse_stage_settings("local", {"alert_endpoints": ["http://127.0.0.1:9/a"]}).alert_endpoints


def _resources(settings: StageSettings) -> dict[str, Any]:
    return dict(stage_template("prod", settings=settings)["Resources"])


def test_given_retain_data_then_tables_pool_and_secret_are_retained_and_protected() -> None:
    resources = _resources(StageSettings(retain_data=True))
    for name in (*DATA_RESOURCES, "SigningKeySecret"):
        assert (resources[name]["DeletionPolicy"], resources[name]["UpdateReplacePolicy"]) == ("Retain", "Retain")
    for name in DATA_RESOURCES[:-1]:  # the tables
        properties = resources[name]["Properties"]
        assert properties["DeletionProtectionEnabled"] is True
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resources["UserPool"]["Properties"]["DeletionProtection"] == "ACTIVE"


def test_given_a_disposable_stage_then_every_stateful_resource_says_delete_and_nothing_is_protected() -> None:
    resources = _resources(StageSettings(retain_data=False))
    stateful = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::S3::Bucket")
    for name, resource in resources.items():
        if resource["Type"] in stateful or name in ("UserPool", "SigningKeySecret"):
            assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Delete", name
        assert "DeletionProtectionEnabled" not in resource.get("Properties", {}), name
    assert "DeletionProtection" not in resources["UserPool"]["Properties"]


def test_given_alert_addresses_and_endpoints_then_each_is_a_subscription_to_the_alerts_topic() -> None:
    settings = StageSettings(alert_emails=("a@example.com", "b@example.com"), alert_endpoints=("https://h.example/x",))
    subscriptions = [r["Properties"] for r in _resources(settings).values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscriptions == [
        {"TopicArn": {"Ref": "AlertsTopic"}, "Protocol": "email", "Endpoint": "a@example.com"},
        {"TopicArn": {"Ref": "AlertsTopic"}, "Protocol": "email", "Endpoint": "b@example.com"},
        {"TopicArn": {"Ref": "AlertsTopic"}, "Protocol": "https", "Endpoint": "https://h.example/x"},
    ]
    assert not [r for r in _resources(StageSettings()).values() if r["Type"] == "AWS::SNS::Subscription"]


def test_given_a_cors_origin_then_the_uploads_bucket_allows_it_alone_and_expires_abandoned_uploads() -> None:
    bucket = _resources(StageSettings(cors_origin="https://shop.example.com", abandoned_upload_days=3))[
        "UploadsBucket"
    ]["Properties"]
    assert [rule["AllowedOrigins"] for rule in bucket["CorsConfiguration"]["CorsRules"]] == [
        ["https://shop.example.com"]
    ]
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("uploads/", 3, "Enabled")


def test_given_the_access_log_retention_then_the_access_log_group_keeps_that_long() -> None:
    group = _resources(StageSettings(access_log_retention_days=90))["ApiAccessLogGroup"]["Properties"]
    assert group == {"LogGroupName": "/aws/apigateway/ecommerce-backend-prod-access", "RetentionInDays": 90}
