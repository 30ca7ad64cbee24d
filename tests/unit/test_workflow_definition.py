"""statemachine.json, the stage's pipeline resources and the deployment patch agree with the app."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import app as application
from chalicelib.config import MAX_RECEIVES
from infra.pipeline import (
    ASYNC_HANDLERS,
    PARTIAL_BATCH_HANDLERS,
    STATE_MACHINE_FILE,
    TASK_FUNCTIONS,
    definition,
    deployment_patch,
)
from infra.template import stage_template

pytestmark = pytest.mark.unit

MACHINE = json.loads(STATE_MACHINE_FILE.read_text())
# The seed's states but its PaymentPending Wait: an Express execution cannot wait 300 s, so a pending
# payment ends the execution at AwaitPayment and a delayed re-check resumes it at CheckPaymentStatus.
SEED_STATES = {
    "ValidateOrder": "Task",
    "CheckInventory": "Task",
    "ProcessPayment": "Task",
    "PaymentChoice": "Choice",
    "FulfillOrder": "Parallel",
    "OrderCompleted": "Succeed",
    "OrderValidationFailed": "Fail",
    "NotifyOutOfStock": "Task",
    "PaymentFailed": "Task",
    "CheckPaymentStatus": "Task",
    "OrderFailed": "Fail",
}


def tasks(states: dict[str, Any]) -> dict[str, Any]:
    found = {name: state for name, state in states.items() if state["Type"] == "Task"}
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(tasks(branch["States"]))
    return found


def test_the_seeds_states_keep_their_names_and_types() -> None:
    assert {name: MACHINE["States"][name]["Type"] for name in SEED_STATES} == SEED_STATES
    branches = [b["StartAt"] for b in MACHINE["States"]["FulfillOrder"]["Branches"]]
    assert branches == ["ReserveInventory", "SendConfirmation", "ScheduleShipping"]


def test_process_payment_retries_gateway_timeouts_as_the_seed_does() -> None:
    retry = MACHINE["States"]["ProcessPayment"]["Retry"][0]
    assert retry == {
        "ErrorEquals": ["PaymentGatewayTimeout"],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2.0,
    }


def test_every_task_but_the_last_compensation_catches_everything_into_a_compensation() -> None:
    for name, state in tasks(MACHINE["States"]).items():
        if name in ("CompensateOrder", "ReserveInventory", "SendConfirmation", "ScheduleShipping"):
            continue  # the last resort has nobody to hand over to; the branches are caught by their Parallel
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert state["Catch"][-1]["Next"] == "CompensateOrder", name
    parallel = MACHINE["States"]["FulfillOrder"]["Catch"]
    assert [(c["ErrorEquals"], c["Next"]) for c in parallel] == [
        (["InsufficientInventory"], "RefundPayment"),
        (["States.ALL"], "CompensateOrder"),
    ]


def test_every_task_retries_a_failed_function_twice_but_never_a_business_outcome() -> None:
    # Every step is idempotent (services/workflow.py, compensation.py), so a crash or a timed-out
    # function is retried before the order is compensated; a business outcome is not retried.
    business = {"ValidationError", "InsufficientInventory", "PaymentGatewayTimeout"}
    for name, state in tasks(MACHINE["States"]).items():
        last = state["Retry"][-1]
        assert last["ErrorEquals"] == ["States.TaskFailed"] and last["MaxAttempts"] == 2, name
        caught = {error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]} & business
        # Step Functions takes the first retrier that matches: each business error caught here is matched earlier.
        for error in caught:
            first = next(retrier for retrier in state["Retry"] if error in retrier["ErrorEquals"])
            assert first["MaxAttempts"] == 0, (name, error)
    branch_errors = {"ReserveInventory": "InsufficientInventory"}  # caught by FulfillOrder, not by the branch
    for name, error in branch_errors.items():
        first = next(r for r in tasks(MACHINE["States"])[name]["Retry"] if error in r["ErrorEquals"])
        assert first["MaxAttempts"] == 0


def test_the_workflow_is_express_and_keeps_no_wait_inside_it() -> None:
    # GIVEN the single stage definition WHEN it is rendered for any stage THEN the workflow is Express
    for stage in ("local", "dev"):
        machine = stage_template(stage)["Resources"]["OrderStateMachine"]["Properties"]
        assert machine["StateMachineType"] == "EXPRESS"
    # and nothing in it waits: Express runs at most five minutes, the payment wait is the re-check queue's delay
    assert MACHINE["TimeoutSeconds"] <= 300
    assert not [name for name, state in MACHINE["States"].items() if state["Type"] == "Wait"]


def test_a_pending_payment_ends_the_execution_and_a_recheck_resumes_at_the_status_check() -> None:
    states = MACHINE["States"]
    assert states[MACHINE["StartAt"]]["Choices"] == [
        {"Variable": "$.resume", "StringEquals": "payment_check", "Next": "CheckPaymentStatus"}
    ]
    assert states["PaymentChoice"]["Default"] == "AwaitPayment"
    assert states["AwaitPayment"]["Next"] == "PaymentAwaited" and states["PaymentAwaited"]["Type"] == "Succeed"
    assert states["AwaitPayment"]["Catch"][0] == {
        "ErrorEquals": ["PaymentPendingTooLong"],
        "ResultPath": "$.error",
        "Next": "PaymentFailed",
    }
    assert states["CheckPaymentStatus"]["Parameters"]["round.$"] == "$.payment_round"


def test_the_payment_wait_comes_from_the_execution_input() -> None:
    # A stack parameter, so a deployment may set it; the stage's default otherwise.
    for stage, seconds in (("local", 1), ("dev", 300)):
        template = stage_template(stage)
        assert template["Outputs"]["PAYMENT_WAIT_SECONDS"]["Value"] == {"Ref": "PaymentWaitSeconds"}
        assert template["Parameters"]["PaymentWaitSeconds"]["Default"] == seconds


def test_every_substitution_names_a_task_function_of_the_app_and_nothing_is_left_over() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", STATE_MACHINE_FILE.read_text()))
    assert used == set(TASK_FUNCTIONS)
    functions = {f.name for f in application.app.pure_lambda_functions}
    assert set(TASK_FUNCTIONS.values()) <= functions
    text = definition({var: f"arn:aws:lambda:us-east-1:1:function:{fn}" for var, fn in TASK_FUNCTIONS.items()})
    assert "${" not in text


def test_every_sqs_handler_reports_batch_item_failures_in_the_deployment_patch() -> None:
    # Chalice 1.34 never sets it; without it Lambda deletes a batch's failed messages with the good ones.
    sqs_handlers = {s.name for s in application.app.event_sources if s.__class__.__name__ == "SQSEventConfig"}
    assert sqs_handlers == set(PARTIAL_BATCH_HANDLERS)
    resources = deployment_patch()["Resources"]
    for handler in sqs_handlers:
        function = "".join(part.capitalize() for part in handler.split("_"))
        events = resources[function]["Properties"]["Events"]
        assert events[f"{function}SqsEventSource"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_asynchronously_invoked_handler_has_an_on_failure_destination() -> None:
    kinds = {"SNSEventConfig", "CloudWatchEventConfig"}
    async_handlers = {s.name for s in application.app.event_sources if s.__class__.__name__ in kinds}
    assert async_handlers == set(ASYNC_HANDLERS)
    configs = [r for r in deployment_patch()["Resources"].values() if r.get("Type") == "AWS::Lambda::EventInvokeConfig"]
    assert len(configs) == len(ASYNC_HANDLERS)
    assert all(c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] for c in configs)


def test_every_queue_redrives_one_receive_after_its_handler_gives_up_and_every_dead_letter_queue_has_an_alarm() -> None:
    resources = stage_template("dev")["Resources"]
    queues = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    dead = {k for k in queues if k.endswith("DLQ")}
    for name, props in queues.items():
        if name not in dead:
            assert props["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES + 1 == 4, name
            assert props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] in dead, name
    alarmed = {
        r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert alarmed == dead
    targets = [t for r in resources.values() if r["Type"] == "AWS::Events::Rule" for t in r["Properties"]["Targets"]]
    assert targets and all(t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in dead for t in targets)
