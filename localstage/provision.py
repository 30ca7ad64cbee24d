"""Apply the stage's CloudFormation template (``infra.template``) to any AWS endpoint.

moto's own CloudFormation covers only some of the resource types we use
(no Secrets Manager, Cognito or alarms, and its ``Ref`` to an event bus is
broken in 5.2), so this module interprets the template itself: one small
function per resource type, calling the same APIs CloudFormation would.
It is idempotent, so re-running against a live endpoint is safe.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from localstage.cloudformation.data import lifecycle_api_rules

Json = dict[str, Any]


@dataclass
class Provisioned:
    """What the template produced: physical ids (``Ref``), attributes and outputs."""

    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@functools.cache
def _process_session() -> boto3.session.Session:
    return boto3.session.Session()


class Provisioner:
    def __init__(self, session: boto3.session.Session | None = None, region: str = "us-east-1") -> None:
        # boto3's default session unless given: a new one would load botocore's data again (~80 ms a client).
        # moto's mock_aws hides the default session (patched to None) while it runs; then one session kept
        # for this process serves, so each mocked test does not reload every service model (~0.45 s).
        self._session = session or boto3.DEFAULT_SESSION or _process_session()
        self._region = region
        self._clients: dict[str, Any] = {}
        self.result = Provisioned()
        self._handlers: dict[str, Callable[[str, Json], None]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,  # the stage's alert subscribers (infra.stage_settings)
            "AWS::Events::EventBus": self._event_bus,
            "AWS::S3::Bucket": self._bucket,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            # The order pipeline (infra/pipeline.py).
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::Events::Rule": self._event_rule,
            "AWS::IAM::Role": self._iam_role,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::CloudWatch::Dashboard": self._dashboard,  # infra/observability.py
            "AWS::Logs::LogGroup": self._log_group,
        }

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self._region)
        return self._clients[service]

    def apply(self, template: Json, parameters: dict[str, str] | None = None) -> Provisioned:
        """Create every resource in dependency order (the template lists dependencies first)."""
        for name, declared in template.get("Parameters", {}).items():  # a Ref to one is its value
            self.result.refs[name] = str((parameters or {}).get(name, declared.get("Default", "")))
        for logical_id, resource in template["Resources"].items():
            handler = self._handlers.get(resource["Type"])
            if handler is None:
                raise NotImplementedError(f"local provisioning of {resource['Type']} ({logical_id}) is not supported")
            handler(logical_id, self.resolve(resource.get("Properties", {})))
        self.result.outputs = {k: str(self.resolve(v["Value"])) for k, v in template.get("Outputs", {}).items()}
        return self.result

    def resolve(self, value: Any) -> Any:
        """Evaluate the intrinsic functions the template uses (Ref, Fn::GetAtt)."""
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                name = value["Ref"]
                return self._sub("${" + name + "}") if name.startswith("AWS::") else self.result.refs[name]
            if set(value) == {"Fn::GetAtt"}:
                logical_id, attribute = value["Fn::GetAtt"]
                return self.result.attrs[(logical_id, attribute)]
            if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
                return self._sub(value["Fn::Sub"])
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    # -- resource types ---------------------------------------------------------------------

    def _table(self, logical_id: str, props: Json) -> None:
        ddb = self.client("dynamodb")
        name = props["TableName"]
        args: Json = {
            "TableName": name,
            "BillingMode": props["BillingMode"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
        if "GlobalSecondaryIndexes" in props:
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        try:
            ddb.create_table(**args)
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        except ddb.exceptions.ResourceInUseException:
            pass
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        description = ddb.describe_table(TableName=name)["Table"]
        self.result.refs[logical_id] = name
        self.result.attrs[(logical_id, "Arn")] = description["TableArn"]

    def _queue(self, logical_id: str, props: Json) -> None:
        sqs = self.client("sqs")
        attributes = {
            "MessageRetentionPeriod": str(props["MessageRetentionPeriod"]),
            "VisibilityTimeout": str(props["VisibilityTimeout"]),
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.result.refs[logical_id] = url
        self.result.attrs[(logical_id, "Arn")] = arn
        self.result.attrs[(logical_id, "QueueName")] = props["QueueName"]

    def _topic(self, logical_id: str, props: Json) -> None:
        arn = self.client("sns").create_topic(
            Name=props["TopicName"], Attributes={"DisplayName": props.get("DisplayName", "")}
        )["TopicArn"]
        self.result.refs[logical_id] = arn
        self.result.attrs[(logical_id, "TopicName")] = props["TopicName"]

    def _subscription(self, logical_id: str, props: Json) -> None:
        # Subscribe is idempotent for the same topic, protocol and endpoint, as CloudFormation's create is.
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self.result.refs[logical_id] = arn

    def _event_bus(self, logical_id: str, props: Json) -> None:
        events = self.client("events")
        try:
            arn = events.create_event_bus(Name=props["Name"])["EventBusArn"]
        except events.exceptions.ResourceAlreadyExistsException:
            arn = events.describe_event_bus(Name=props["Name"])["Arn"]
        self.result.refs[logical_id] = props["Name"]
        self.result.attrs[(logical_id, "Arn")] = arn

    def _bucket(self, logical_id: str, props: Json) -> None:
        s3 = self.client("s3")
        name = props["BucketName"]
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
        if "CorsConfiguration" in props:
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": props["CorsConfiguration"]["CorsRules"]})
        rules = lifecycle_api_rules(props.get("LifecycleConfiguration", {}))
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
        self.result.refs[logical_id] = name
        self.result.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _secret(self, logical_id: str, props: Json) -> None:
        sm = self.client("secretsmanager")
        name = props["Name"]
        try:
            arn = sm.describe_secret(SecretId=name)["ARN"]
        except sm.exceptions.ResourceNotFoundException:
            spec = props["GenerateSecretString"]
            # As CloudFormation does: random string, merged into the template under the key.
            random = sm.get_random_password(
                PasswordLength=spec["PasswordLength"], ExcludePunctuation=spec.get("ExcludePunctuation", False)
            )["RandomPassword"]
            value = json.loads(spec.get("SecretStringTemplate", "{}"))
            value[spec["GenerateStringKey"]] = random
            arn = sm.create_secret(Name=name, Description=props.get("Description", ""), SecretString=json.dumps(value))[
                "ARN"
            ]
        self.result.refs[logical_id] = arn

    def _user_pool(self, logical_id: str, props: Json) -> None:
        idp = self.client("cognito-idp")
        name = props["UserPoolName"]
        pools = [p for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == name]
        if pools:
            pool_id = pools[0]["Id"]
        else:
            pool_id = idp.create_user_pool(
                PoolName=name,
                UsernameAttributes=props["UsernameAttributes"],
                AdminCreateUserConfig=props["AdminCreateUserConfig"],
                Policies=props["Policies"],
            )["UserPool"]["Id"]
        self.result.refs[logical_id] = pool_id

    def _user_pool_client(self, logical_id: str, props: Json) -> None:
        idp = self.client("cognito-idp")
        pool_id = props["UserPoolId"]
        clients = [
            c
            for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
            if c["ClientName"] == props["ClientName"]
        ]
        if clients:
            client_id = clients[0]["ClientId"]
        else:
            client_id = idp.create_user_pool_client(
                UserPoolId=pool_id,
                ClientName=props["ClientName"],
                GenerateSecret=props["GenerateSecret"],
                ExplicitAuthFlows=props["ExplicitAuthFlows"],
            )["UserPoolClient"]["ClientId"]
        self.result.refs[logical_id] = client_id

    # -- order pipeline resource types ------------------------------------------------------

    def _sub(self, text: str) -> str:
        """``Fn::Sub`` with the pseudo parameters (the pipeline's templates use no other variables)."""
        account = self.client("sts").get_caller_identity()["Account"]
        pseudo = {"AWS::Region": self._region, "AWS::AccountId": account}
        for name, value in {**pseudo, "AWS::Partition": "aws"}.items():
            text = text.replace("${" + name + "}", value)
        return text

    def _queue_policy(self, logical_id: str, props: Json) -> None:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        self.result.refs[logical_id] = logical_id

    def _event_rule(self, logical_id: str, props: Json) -> None:
        events = self.client("events")
        bus = props.get("EventBusName", "default")
        arn = events.put_rule(
            Name=props["Name"],
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
            Description=props.get("Description", ""),
            EventBusName=bus,
        )["RuleArn"]
        events.put_targets(Rule=props["Name"], EventBusName=bus, Targets=props.get("Targets", []))
        self.result.refs[logical_id] = props["Name"]
        self.result.attrs[(logical_id, "Arn")] = arn

    def _iam_role(self, logical_id: str, props: Json) -> None:
        iam = self.client("iam")
        name = props["RoleName"]
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
            )["Role"]["Arn"]
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        self.result.refs[logical_id] = name
        self.result.attrs[(logical_id, "Arn")] = arn

    def _state_machine(self, logical_id: str, props: Json) -> None:
        sfn = self.client("stepfunctions")
        name = props["StateMachineName"]
        text = props["DefinitionString"]
        for key, value in props.get("DefinitionSubstitutions", {}).items():  # as CloudFormation substitutes
            text = text.replace("${" + key + "}", str(value))
        found = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
        settings: Json = {"definition": text, "roleArn": props["RoleArn"]}
        if "LoggingConfiguration" in props:
            logging = props["LoggingConfiguration"]
            settings["loggingConfiguration"] = {
                "level": logging["Level"],
                "includeExecutionData": logging["IncludeExecutionData"],
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging.get("Destinations", [])
                ],
            }
        if "TracingConfiguration" in props:
            settings["tracingConfiguration"] = {"enabled": props["TracingConfiguration"]["Enabled"]}
        if found:
            sfn.update_state_machine(stateMachineArn=found[0], **settings)
            arn = found[0]
        else:
            arn = sfn.create_state_machine(name=name, type=props.get("StateMachineType", "STANDARD"), **settings)[
                "stateMachineArn"
            ]
        self.result.refs[logical_id] = arn
        self.result.attrs[(logical_id, "Name")] = name

    def _log_group(self, logical_id: str, props: Json) -> None:
        logs = self.client("logs")
        name = props["LogGroupName"]
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=props["RetentionInDays"])
        arn = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["arn"]
        self.result.refs[logical_id] = name
        self.result.attrs[(logical_id, "Arn")] = arn

    def _alarm(self, logical_id: str, props: Json) -> None:
        args = {k: v for k, v in props.items() if k != "AlarmName"}
        self.client("cloudwatch").put_metric_alarm(AlarmName=props["AlarmName"], **args)
        self.result.refs[logical_id] = props["AlarmName"]

    def _dashboard(self, logical_id: str, props: Json) -> None:
        self.client("cloudwatch").put_dashboard(
            DashboardName=props["DashboardName"], DashboardBody=props["DashboardBody"]
        )
        self.result.refs[logical_id] = props["DashboardName"]


def provision_stage(stage: str, session: boto3.session.Session | None = None) -> dict[str, str]:
    """Provision ``stage`` and return the functions' environment (its template outputs)."""
    from infra.template import stage_template

    return Provisioner(session).apply(stage_template(stage)).outputs
