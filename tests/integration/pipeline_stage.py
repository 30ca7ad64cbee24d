"""A pipeline stage inside ``moto.mock_aws``: the stage template, moto's Step Functions interpreter
running statemachine.json, the app's handlers run in-process by the local stage's Lambda emulator,
and the local stage's SQS poller standing in for Lambda's event source mappings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

import app as application
from chalicelib.adapters.aws import reset_clients
from chalicelib.bootstrap import Container, use_container
from chalicelib.config import Settings
from infra.pipeline import reports_batch_item_failures
from infra.template import stage_template
from localstage.functions import discover_functions
from localstage.lambdas import LambdaEmulator
from localstage.moto_lambda import ensure_role, moto_config, register_functions, uninstall_invoke_hook
from localstage.moto_patches import cache_asl_parse_trees, cache_moto_lookups, serialised_dynamodb_writes
from localstage.moto_speedups import speed_up_moto
from localstage.patches import Patches
from localstage.provision import Provisioner
from localstage.sfn_logs import deliver_execution_logs
from localstage.sqs_poller import SqsMapping, SqsPoller
from tests.fake_aws import fake_aws_environment
from tests.integration.moto_reset import drain_queues
from tests.integration.repository_support import without_monitoring

STAGE = "local"  # the local stage's template: a payment wait of 1 s
PREFIX = f"ecommerce-backend-{STAGE}"


@dataclass
class PipelineStage:
    container: Container
    outputs: dict[str, str]
    emulator: LambdaEmulator
    earlier: set[str] = field(default_factory=set)  # executions of the module's tests before this one

    def begin_test(self) -> None:
        """A test starts on the module's stage: no message another test left, and its executions set aside.

        Its tables keep what earlier tests stored: each test makes its own products and orders.
        """
        drain_queues(self.client("sqs"))
        self.earlier = {e["executionArn"] for e in self._all_executions()}

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1")

    def poller(self, handler: str, queue_url: str) -> SqsPoller:
        sqs = self.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        mapping = SqsMapping(
            f"{PREFIX}-{handler}", queue_url, arn, 10, 0.0, reports_batch_item_failures(handler), retry_visibility_s=0
        )
        return SqsPoller(mapping, self.emulator, sqs, wait_s=0)

    def deliver_orders(self) -> int:
        return self.poller("process_order", self.outputs["ORDER_QUEUE_URL"]).poll_once()

    def deliver_rechecks(self, expected: int = 1, timeout: float = 10.0) -> int:
        """Run the re-check consumer over the pending payments' queue until ``expected`` delayed messages were due.

        Each message comes due on its own delay: two sent a moment apart may arrive in two polls.
        """
        poller = self.poller("recheck_payment", self.outputs["PAYMENT_RECHECK_QUEUE_URL"])
        deadline = time.monotonic() + timeout
        delivered = 0
        while delivered < expected and time.monotonic() < deadline:
            found = poller.poll_once()
            delivered += found
            if not found:
                time.sleep(0.1)
        return delivered

    def deliver_events(self) -> None:
        """Run the notification service over what the EventBridge rule queued, until the queue is empty."""
        url = self.client("sqs").get_queue_url(QueueName=f"ecommerce-backend-notification-events-{STAGE}")["QueueUrl"]
        poller = self.poller("route_notification_events", url)
        while poller.poll_once():
            pass

    def executions(self) -> list[dict[str, Any]]:
        """The executions this test started."""
        return [e for e in self._all_executions() if e["executionArn"] not in self.earlier]

    def _all_executions(self) -> list[dict[str, Any]]:
        pages = self.client("stepfunctions").get_paginator("list_executions")
        return [
            e for page in pages.paginate(stateMachineArn=self.outputs["STATE_MACHINE_ARN"]) for e in page["executions"]
        ]

    def wait_until_finished(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the execution ``name`` (``ord_...`` for an order's first run, ``ord_...-check1`` for a re-check)."""
        sfn = self.client("stepfunctions")
        arn = f"{self.outputs['STATE_MACHINE_ARN'].replace(':stateMachine:', ':execution:')}:{name}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return dict(execution)
            time.sleep(0.05)
        raise AssertionError(f"execution {name} still running after {timeout} s")

    def history(self, name: str) -> list[dict[str, Any]]:
        arn = f"{self.outputs['STATE_MACHINE_ARN'].replace(':stateMachine:', ':execution:')}:{name}"
        return list(self.client("stepfunctions").get_execution_history(executionArn=arn)["events"])

    def invoke(self, handler: str, event: dict[str, Any]) -> Any:
        result = self.emulator.invoke(f"{PREFIX}-{handler}", json.dumps(event))
        assert result.function_error is None, result.payload
        return result.json()


@contextmanager
def pipeline_stage() -> Iterator[PipelineStage]:
    with (
        fake_aws_environment(),  # for a module's fixture, set up before each test's environment
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        serialised_dynamodb_writes(),
        Patches() as patches,
    ):
        deliver_execution_logs(patches)  # the Express workflow's executions, in its log group
        cache_asl_parse_trees(patches)  # as the stage does: statemachine.json parsed once, not per execution
        cache_moto_lookups(patches)
        speed_up_moto(patches)
        reset_clients(keep_session=True)  # new clients for this mock; botocore's models stay loaded
        outputs = Provisioner().apply(without_monitoring(stage_template(STAGE))).outputs
        container = Container(Settings.from_env({**outputs, "STAGE": STAGE, "AWS_REGION": "us-east-1"}))
        use_container(container)
        emulator = LambdaEmulator(config_source=moto_config, measure_memory=False)
        role = ensure_role(boto3.client("iam", region_name="us-east-1"), PREFIX)
        specs = discover_functions(application.app, STAGE)
        register_functions(emulator, specs, boto3.client("lambda", region_name="us-east-1"), role)
        sns = boto3.client("sns", region_name="us-east-1")
        sns.subscribe(
            TopicArn=outputs["NOTIFICATIONS_TOPIC_ARN"],
            Protocol="lambda",
            Endpoint=f"arn:aws:lambda:us-east-1:123456789012:function:{PREFIX}-send_notification",
        )
        try:
            yield PipelineStage(container, outputs, emulator)
        finally:
            emulator.telemetry.close()  # the last logs and metrics, while moto is still there to take them
            uninstall_invoke_hook(emulator)
            use_container(None)
            reset_clients(keep_session=True)
