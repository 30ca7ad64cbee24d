"""IAM on the running local stage, through HTTP and the AWS endpoint only.

- A role session is refused what its policy does not grant, with AWS's error, and the stage says so.
- Every path of the system, run on a stage of its own, uses every grant of every function's policy:
  least privilege is also enough privilege, and a grant no path needs shows up as unused.
- The permission drill: with ``jwt_auth:dynamodb:GetItem`` revoked, authorized requests fail and
  public ones still work.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.pipeline import PAYMENT_CHECK_ROUNDS, execution_name
from infra.pipeline import WORKFLOW_LOG_DELIVERY_ACTIONS, WORKFLOW_TRACING_ACTIONS
from localstage.iam.policy import wildcard_match
from tests.e2e.conftest import RunningStage
from tests.e2e.stage_process import separate_stage
from tests.e2e.support import ACCOUNT, ADDRESS, PREFIX, REGION, StageShop, aws, sweep_a_stalled_order, wait_for

pytestmark = pytest.mark.e2e

ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-jwt_auth"
# As make run: each function's calls come from its own processes, signed with its role session's keys.
PROCESSES = {"LOCAL_LAMBDA_PROCESSES": "1"}

# Grants no path on this stage can use, each with the reason. The test fails if one becomes used
# (delete it here) or if any other grant is unused (remove the grant, or add a path that needs it).
XRAY_DAEMON = "sent by the X-Ray daemon: the local stage runs one daemon for every function, as itself"
FUNCTIONS = (
    "api_handler",
    "jwt_auth",
    "process_order",
    "route_notification_events",
    "send_notification",
    "handle_workflow_event",
    "cost_optimizer",
    "sweep_stalled_orders",
    "validate_order",
    "check_inventory",
    "process_payment",
    "check_payment_status",
    "await_payment",
    "recheck_payment",
    "reserve_inventory",
    "send_confirmation",
    "schedule_shipping",
    "complete_order",
    "reject_order",
    "notify_out_of_stock",
    "handle_payment_failure",
    "refund_payment",
    "compensate_order",
)
POOL = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/*"
ACCEPTED_UNUSED: dict[str, dict[tuple[str, str], str]] = {
    f"{PREFIX}-{function}": {
        ("xray:PutTraceSegments", "*"): XRAY_DAEMON,
        ("xray:PutTelemetryRecords", "*"): XRAY_DAEMON,
    }
    for function in FUNCTIONS
}
ACCEPTED_UNUSED[f"{PREFIX}-api_handler"].update(
    {
        ("cognito-idp:AdminDeleteUser", POOL): "undoes a Cognito user whose Users-table record could not be written",
        (
            "cognito-idp:AdminGetUser",
            POOL,
        ): "reads the user's sub when AdminCreateUser's answer lacks it (moto's has it)",
    }
)
ACCEPTED_UNUSED[f"{PREFIX}-process_payment"] = {
    **ACCEPTED_UNUSED[f"{PREFIX}-process_payment"],
    ("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ecommerce-backend-payments-local"): (
        "reads the winner's outcome after losing a race to charge (two executions of one order at once)"
    ),
}
# Accepted grants a run may use or not, depending on timing: a charge racing another attempt for the same
# order (the gateway-timeout retry, a redelivered message) reads the winner's outcome. Seen used in one full
# run in five (December 2026), so "every accepted one is still unused" does not apply to them.
MAY_BE_USED = {
    (
        f"{PREFIX}-process_payment",
        ("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ecommerce-backend-payments-local"),
    )
}
WORKFLOW_SERVICE = (
    "used by Step Functions itself to deliver execution logs and segments: the local stage writes the "
    "execution logs and the execution's X-Ray segments as itself (docs/local-stage.md)"
)
ACCEPTED_UNUSED["ecommerce-backend-order-workflow-local"] = {
    **{(action, "*"): WORKFLOW_SERVICE for action in (*WORKFLOW_LOG_DELIVERY_ACTIONS, *WORKFLOW_TRACING_ACTIONS)},
    ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-refund_payment"): (
        "RefundPayment runs when the stock hold vanishes between CheckInventory and ReserveInventory (a "
        "concurrent compensation); the task itself runs here by direct invoke"
    ),
}


def _matches(accepted: tuple[str, str], grant: tuple[str, str]) -> bool:
    return accepted[0] == grant[0] and wildcard_match(accepted[1], grant[1])


def _accepted(role: str, grant: tuple[str, str]) -> bool:
    return any(_matches(accepted, grant) for accepted in ACCEPTED_UNUSED.get(role, {}))


def _report(stage: RunningStage) -> dict[str, Any]:
    return dict(httpx.get(f"{stage.aws_endpoint}/_localstage/iam", timeout=10).json())


@pytest.fixture(scope="module")
def iam_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    """A stage of this module's own: its IAM ledger then holds only the paths this module runs."""
    with separate_stage(tmp_path_factory.mktemp("iam"), PROCESSES) as stage:
        yield stage


def test_given_a_role_session_when_it_calls_outside_its_policy_then_refused_with_awss_error(
    iam_stage: RunningStage,
) -> None:
    # GIVEN an operator acting as the authorizer's role, through the embedded STS as on AWS
    credentials = aws(iam_stage, "sts").assume_role(RoleArn=ROLE, RoleSessionName="operator")["Credentials"]
    as_authorizer = aws(iam_stage, "dynamodb", credentials)
    # WHEN it reads the Users table, which its policy grants
    as_authorizer.get_item(TableName=f"{PREFIX.replace('-local', '')}-users-local", Key={"user_id": {"S": "nobody"}})
    # AND writes an order, which it does not
    orders = "ecommerce-backend-orders-local"
    with pytest.raises(ClientError) as refused:
        as_authorizer.put_item(TableName=orders, Item={"order_id": {"S": "ord_forged"}})
    # THEN DynamoDB's AccessDeniedException, worded as AWS words it
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{PREFIX}-jwt_auth/operator is not authorized to perform: "
        f"dynamodb:PutItem on resource: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{orders} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    # AND nothing was written, and the stage's report names the refusal
    assert "Item" not in aws(iam_stage, "dynamodb").get_item(TableName=orders, Key={"order_id": {"S": "ord_forged"}})
    denied = _report(iam_stage)["denied"]
    assert any(d["caller"].endswith("/operator") and d["action"] == "dynamodb:PutItem" for d in denied)


def _upload(shop: StageShop) -> None:
    """A presigned form from the API, then the file posted straight to S3 (signed by the API's role)."""
    answer = shop.http.post(
        "/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 64}, headers=shop.buyer
    )
    assert answer.status_code == 201, answer.text
    form = answer.json()["upload"]
    posted = httpx.post(
        form["url"], data=form["fields"], files={"file": ("a.png", b"\x89PNG" + b"0" * 60, "image/png")}
    )
    assert posted.status_code in (200, 201, 204), posted.text


def _status_event(stage: RunningStage, order_id: str, status: str, name: str | None = None) -> dict[str, Any]:
    sfn = aws(stage, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"])
    name = name or order_id
    execution = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
    detail = {"executionArn": execution, "stateMachineArn": machine, "name": name, "status": status}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [execution],
        "detail": detail,
    }


def _abort_an_execution(stage: RunningStage, shop: StageShop, product: str) -> None:
    """An operator's "aborted" for an order waiting on its payment: the workflow monitor compensates and alerts.

    The Express workflow sends no status change events (Standard workflows do), so the event is invoked
    asynchronously, as EventBridge would deliver it.
    """
    order_id = shop.order(product, token="tok_pending_99")
    lam = aws(stage, "lambda")
    wait_for(
        lambda: shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()["status"] == "PROCESSING",
        timeout=30,
        poll=0.3,
    )
    time.sleep(1)  # the first execution holds the stock and ends at AwaitPayment
    # The last round's execution: re-checks keep resuming the order every second, and a stop of an execution
    # a later round has taken over changes nothing (services/workflow_events.py); no round follows the last.
    last = execution_name(order_id, PAYMENT_CHECK_ROUNDS)
    event = json.dumps(_status_event(stage, order_id, "ABORTED", last))
    lam.invoke(FunctionName=f"{PREFIX}-handle_workflow_event", InvocationType="Event", Payload=event)


def _poison_a_recheck(stage: RunningStage, shop: StageShop, product: str) -> None:
    """A re-check no consumer can process: dead-lettered after three receives, its order compensated."""
    order_id = shop.order(product, token="tok_pending_99")
    wait_for(
        lambda: shop.http.get(f"/orders/{order_id}", headers=shop.buyer).json()["status"] == "PROCESSING",
        timeout=30,
        poll=0.3,
    )
    sqs = aws(stage, "sqs")
    url = sqs.get_queue_url(QueueName="ecommerce-backend-payment-rechecks-local")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"order_id": order_id, "round": 0}))


def _poison(stage: RunningStage) -> None:
    """Messages no handler can process: each consumer dead-letters them with its reason."""
    sqs, sns = aws(stage, "sqs"), aws(stage, "sns")
    for queue in ("order-processing", "notification-events"):
        url = sqs.get_queue_url(QueueName=f"ecommerce-backend-{queue}-local")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poison": str(uuid.uuid4())}))
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("notifications-local"))
    sns.publish(TopicArn=topic, Message="not json")


def _fire_cost_optimizer(stage: RunningStage) -> None:
    """The daily run (with a memory-tuning result to read, as the runbook leaves one), and a run on named functions."""
    s3 = aws(stage, "s3")
    s3.put_object(Bucket="ecommerce-backend-reports-local", Key=f"memory-tuning/{PREFIX}/latest.json", Body=b"{}")
    events = aws(stage, "events")
    rule = events.describe_rule(Name=f"{PREFIX}-cost_optimizer-event")["Arn"]
    events.put_events(
        Entries=[{"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}", "Resources": [rule]}]
    )
    named = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [rule],
        "detail": {"function_names": [PREFIX], "dry_run": True},
    }
    answer = aws(stage, "lambda").invoke(FunctionName=f"{PREFIX}-cost_optimizer", Payload=json.dumps(named))
    assert "FunctionError" not in answer, answer["Payload"].read()


def _read_own_profile(stage: RunningStage, shop: StageShop) -> None:
    user = shop.http.get("/orders", headers=shop.buyer)  # any authorized route runs the authorizer
    assert user.status_code == 200
    me = shop.http.post(
        "/users", json={"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": "Sup3r-secret", "name": "P"}
    )
    login = shop.http.post("/auth/login", json={"email": me.json()["email"], "password": "Sup3r-secret"}).json()
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    assert shop.http.get(f"/users/{me.json()['user_id']}", headers=bearer).status_code == 200


def _order_twice(shop: StageShop, product: str) -> str:
    """A retried checkout: the same Idempotency-Key and body give the same order."""
    body = {
        "items": [{"product_id": product, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": {"type": "card", "token": "tok_success"},
    }
    headers = {**shop.buyer, "Idempotency-Key": f"iam-{uuid.uuid4().hex}"}
    first, again = (shop.http.post("/orders", json=body, headers=headers) for _ in range(2))
    assert first.status_code == 201 and again.json()["order_id"] == first.json()["order_id"], again.text
    return str(first.json()["order_id"])


def _fail_an_execution(stage: RunningStage) -> None:
    """An execution for an order that does not exist fails through CompensateOrder; the monitor's own
    compensation of its status event fails too, and Lambda dead-letters the event after its retries."""
    sfn = aws(stage, "stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"])
    missing = f"ord_missing{uuid.uuid4().hex[:8]}"
    sfn.start_execution(stateMachineArn=machine, name=missing, input=json.dumps({"order_id": missing}))
    event = json.dumps(_status_event(stage, missing, "FAILED"))
    aws(stage, "lambda").invoke(FunctionName=f"{PREFIX}-handle_workflow_event", InvocationType="Event", Payload=event)


def _invoke(stage: RunningStage, task: str, order_id: str) -> None:
    """A branch no order reaches on demand (a refund needs stock to vanish between check and reserve)."""
    answer = aws(stage, "lambda").invoke(FunctionName=f"{PREFIX}-{task}", Payload=json.dumps({"order_id": order_id}))
    assert "FunctionError" not in answer, answer["Payload"].read()


def test_given_every_path_when_run_then_every_grant_of_every_function_is_used(iam_stage: RunningStage) -> None:
    # GIVEN a buyer, an admin and products
    shop = StageShop(iam_stage)
    product = shop.product(stock=20)
    expensive = shop.product(price=6000, stock=5)
    assert shop.http.patch(f"/products/{product}", json={"stock": 30}, headers=shop.admin).status_code == 200
    for path in ("/products", "/products?category=e2e", f"/products/{product}"):
        assert shop.http.get(path).status_code == 200
    assert shop.http.get("/orders", headers=shop.buyer).status_code == 200
    _read_own_profile(iam_stage, shop)
    # WHEN every order path runs: approved, declined, pending, timed out, out of stock, too expensive, given up
    orders = [
        shop.order(product, token=t) for t in ("tok_success", "tok_declined", "tok_pending", "tok_gateway_timeout")
    ]
    orders += [shop.order(product, quantity=50), shop.order(expensive, quantity=2), _order_twice(shop, product)]
    # A payment that never settles: after the last re-check PaymentFailed voids it and releases the hold
    orders.append(shop.order(product, token="tok_pending_99"))
    # A compensation while the payment is still pending (its 1 s wait): the payment is voided
    pending = shop.order(product, token="tok_pending")
    _invoke(iam_stage, "compensate_order", pending)
    orders.append(pending)
    _upload(shop)
    _abort_an_execution(iam_stage, shop, product)
    _poison_a_recheck(iam_stage, shop, product)
    _poison(iam_stage)
    _fail_an_execution(iam_stage)
    _fire_cost_optimizer(iam_stage)
    for order_id in orders:
        shop.settle(order_id)
    _invoke(iam_stage, "refund_payment", orders[0])  # charged: the payment is refunded
    _invoke(iam_stage, "refund_payment", orders[1])  # declined: nothing to refund, the failure is announced
    sweep_a_stalled_order(lambda service: aws(iam_stage, service), shop.settle(shop.order(product))["order_id"])

    # THEN, once the asynchronous paths have run, every grant was used but the accepted ones
    def settled() -> dict[str, Any] | None:
        report = _report(iam_stage)
        unused = {role: {(g["action"], g["resource"]) for g in grants} for role, grants in report["unused"].items()}
        left = {role: [g for g in grants if not _accepted(role, g)] for role, grants in unused.items()}
        return report if not any(left.values()) else None

    try:
        report = wait_for(settled, timeout=45, poll=0.3)
    except AssertionError:
        report = _report(iam_stage)
        left = [
            f"{role} {g['action']} {g['resource']}"
            for role, grants in report["unused"].items()
            for g in grants
            if not _accepted(role, (g["action"], g["resource"]))
        ]
        raise AssertionError("grants no path used:\n" + "\n".join(left)) from None
    # AND every accepted one is still unused (else it should leave the list)
    for role, accepted in ACCEPTED_UNUSED.items():
        still = [(g["action"], g["resource"]) for g in report["unused"].get(role, [])]
        used_now = [
            a for a in accepted if (role, a) not in MAY_BE_USED and not any(_matches(a, grant) for grant in still)
        ]
        assert not used_now, (role, used_now)
    # AND no function was refused anything (their sessions are named after them; the operator's is not)
    assert [d for d in report["denied"] if d["caller"].rsplit("/", 1)[-1].startswith(PREFIX)] == []


@pytest.fixture(scope="module")
def drill_stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStage]:
    """The permission drill: a stage started without the authorizer's read of the Users table."""
    drill = {**PROCESSES, "LOCAL_IAM_REVOKE": "jwt_auth:dynamodb:GetItem"}
    with separate_stage(tmp_path_factory.mktemp("drill"), drill) as stage:
        yield stage


def test_given_the_authorizers_read_revoked_then_authorized_requests_fail_and_public_ones_work(
    drill_stage: RunningStage,
) -> None:
    http = httpx.Client(base_url=drill_stage.api_url, timeout=15)
    # GIVEN the banner says what was revoked
    assert "revoked: jwt_auth:dynamodb:GetItem" in drill_stage.log_path.read_text()
    # WHEN a caller logs in (public) and calls a protected route with a valid token
    assert http.get("/products").status_code == 200
    login = http.post("/auth/login", json={"email": drill_stage.admin_email, "password": drill_stage.admin_password})
    assert login.status_code == 200, login.text
    protected = http.get("/orders", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    # THEN API Gateway answers as it does when the authorizer fails: 500, AuthorizerConfigurationException
    assert protected.status_code == 500, protected.text
    assert protected.headers.get("x-amzn-ErrorType") == "AuthorizerConfigurationException"
    # AND the stage names who was refused what, and why, in AWS's words
    report = _report(drill_stage)
    assert report["revoked"] == ["jwt_auth:dynamodb:GetItem"]
    [refusal] = [d for d in report["denied"] if d["principal"] == f"{PREFIX}-jwt_auth"]
    assert refusal["action"] == "dynamodb:GetItem"
    assert refusal["resource"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ecommerce-backend-users-local"
    assert refusal["reason"] == "no identity-based policy allows the dynamodb:GetItem action"
    # AND the authorizer's own log shows DynamoDB's AccessDeniedException
    logs = aws(drill_stage, "logs").filter_log_events(logGroupName=f"/aws/lambda/{PREFIX}-jwt_auth")["events"]
    assert any("AccessDeniedException" in e["message"] for e in logs)
