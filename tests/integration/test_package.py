"""``make package``: the packaged template lints clean, holds every resource the code addresses, and
each function's own policy grants exactly the AWS calls its code makes (recorded against moto)."""

from __future__ import annotations

import json
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from botocore.client import BaseClient
from chalice.test import Client

import app as application
from chalicelib import config
from infra.package import app_functions, cfn_name, lint, lint_counts, output_key, package
from infra.pipeline import TASK_FUNCTIONS
from infra.policies import FUNCTION_GRANTS, WILDCARD_ONLY_ACTIONS, concrete, policy_document
from infra.template import stage_template
from localstage.iam.actions import Call as ApiCall
from localstage.iam.actions import targets
from localstage.iam.moto_state import secret_arn
from localstage.iam.policy import Request, evaluate
from tests.integration import pipeline_stage as pipeline_module
from tests.integration.pipeline_stage import PipelineStage, pipeline_stage
from tests.pipeline_helpers import add_product, place

pytestmark = pytest.mark.integration

ACCOUNT, REGION = "123456789012", "us-east-1"
# Every variable that names a resource the code addresses (chalicelib/config.py).
RESOURCE_VARIABLES = (
    config.ORDERS_TABLE,
    config.USERS_TABLE,
    config.PRODUCTS_TABLE,
    config.IDEMPOTENCY_TABLE,
    config.PAYMENTS_TABLE,
    config.ORDER_QUEUE_URL,
    config.ORDER_DLQ_URL,
    config.NOTIFICATION_EVENTS_DLQ_URL,
    config.NOTIFICATIONS_TOPIC_ARN,
    config.ALERTS_TOPIC_ARN,
    config.EVENT_BUS_NAME,
    config.UPLOADS_BUCKET,
    config.REPORTS_BUCKET,
    config.SIGNING_KEY_SECRET_ID,
    config.STATE_MACHINE_ARN,
    config.USER_POOL_ID,
    config.USER_POOL_CLIENT_ID,
)


# -- the packaged template ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = package("dev", tmp_path_factory.mktemp("build"))
    return path, json.loads(path.read_text())


def test_given_the_dev_package_when_linted_then_cfn_lint_reports_no_errors(sam: tuple[Path, dict[str, Any]]) -> None:
    status, report = lint(sam[0])
    assert lint_counts(report)["errors"] == 0 and not status & 2, report


def test_given_the_dev_package_then_its_zip_holds_the_vendored_xray_sdk_for_lambda_and_no_botocore(
    sam: tuple[Path, dict[str, Any]],
) -> None:
    # GIVEN the zip make package writes beside the template (build/<stage>/out/deployment.zip)
    with zipfile.ZipFile(sam[0].with_name("deployment.zip")) as archive:
        names = archive.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    # THEN the SDK and wrapt are in it, with wrapt's extension built for python3.11 on x86_64 Lambda
    assert {"aws_xray_sdk", "wrapt"} <= top_level
    assert f"wrapt/_wrappers.cpython-{sys.version_info.major}{sys.version_info.minor}-x86_64-linux-gnu.so" in names
    # AND neither botocore nor boto3: the runtime has them
    assert not top_level & {"botocore", "boto3"}, sorted(top_level)


def test_given_the_package_then_every_resource_the_code_addresses_exists_and_reaches_each_function(
    sam: tuple[Path, dict[str, Any]],
) -> None:
    template = sam[1]
    resources = template["Resources"]
    for variable in RESOURCE_VARIABLES:
        value = template["Outputs"][output_key(variable)]["Value"]
        logical_id = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        assert logical_id in resources, variable
        for function in app_functions():
            environment = resources[cfn_name(function)]["Properties"]["Environment"]["Variables"]
            if variable == config.STATE_MACHINE_ARN and function in TASK_FUNCTIONS.values():
                continue  # the machine's own tasks: naming it would be a cycle, and they never read it
            assert environment[variable] == value, (function, variable)


def test_given_the_package_then_event_sources_batch_failures_and_destinations_use_the_stage_resources(
    sam: tuple[Path, dict[str, Any]],
) -> None:
    resources = sam[1]["Resources"]
    queue = resources["ProcessOrder"]["Properties"]["Events"]["ProcessOrderSqsEventSource"]["Properties"]
    assert queue["Queue"] == {"Fn::GetAtt": ["OrderProcessingQueue", "Arn"]}
    assert queue["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    topic = resources["SendNotification"]["Properties"]["Events"]["SendNotificationSnsSubscription"]["Properties"]
    assert topic["Topic"] == {"Ref": "NotificationTopic"}
    destination = resources["SendNotificationAsyncConfig"]["Properties"]["DestinationConfig"]["OnFailure"]
    assert destination["Destination"] == {"Fn::GetAtt": ["AsyncInvokeDLQ", "Arn"]}
    machine = resources["OrderStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["ValidateOrderFunctionArn"] == {"Fn::GetAtt": ["ValidateOrder", "Arn"]}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    log_groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(log_groups) == len(app_functions()) + 2  # one per function, the workflow's, the API's access logs
    assert {r["Properties"]["RetentionInDays"] for r in log_groups} == {14}  # dev's access logs: 14 days too
    assert {(r["DeletionPolicy"], r["UpdateReplacePolicy"]) for r in log_groups} == {("Delete", "Delete")}


def test_given_the_package_then_each_function_has_its_own_role_and_no_policy_uses_a_needless_wildcard(
    sam: tuple[Path, dict[str, Any]],
) -> None:
    resources = sam[1]["Resources"]
    roles = [resources[cfn_name(f)]["Properties"]["Role"]["Fn::GetAtt"][0] for f in app_functions()]
    assert len(set(roles)) == len(roles)
    for role in roles:
        for policy in resources[role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = set(statement["Action"])
                assert "*" not in actions and not any(a.endswith(":*") for a in actions), role
                if statement["Resource"] == "*":
                    assert actions <= WILDCARD_ONLY_ACTIONS, (role, actions)


# -- the calls each function makes, recorded against moto ---------------------------------------------

_label = threading.local()


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Attribute the AWS calls made inside to ``function`` (this thread only)."""
    previous = getattr(_label, "function", None)
    _label.function = function
    try:
        yield
    finally:
        _label.function = previous


def labelled(function: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def run(event: Any, context: Any) -> Any:
        with acting_as(function):
            return handler(event, context)

    return run


Call = tuple[str, str, str]  # function, IAM action, resource ARN


def iam_calls(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (action, resource) pairs IAM authorises for one API call: the local stage's own mapping."""
    call = ApiCall(service, operation, params, REGION, ACCOUNT)
    return [(t.action, t.resource) for t in targets(call, lambda name: secret_arn(name, REGION, ACCOUNT))]


PROJECT = Path(__file__).resolve().parents[2]


def _made_by_the_code(frame: FrameType | None) -> bool:
    """Whether the innermost project frame that made a call is the deployed code (``chalicelib``).

    The local stage's emulator also calls AWS inside a handler's thread (its logs and metrics):
    that is the Lambda service's work, not the function's, and needs no permission of its own.
    """
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(PROJECT) and not path.is_relative_to(PROJECT / ".venv"):
            return path.is_relative_to(PROJECT / "chalicelib")
        frame = frame.f_back
    return False


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[Call], PipelineStage]]:
    """A pipeline stage on moto whose handlers' AWS calls are recorded, attributed to their function."""
    calls: list[Call] = []
    original = BaseClient._make_api_call

    def record(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        function = getattr(_label, "function", None)
        if function is not None and _made_by_the_code(sys._getframe(1)):
            service = client.meta.service_model.service_name
            calls.extend((function, action, arn) for action, arn in iam_calls(service, operation, params))
        return original(client, operation, params)

    discover = pipeline_module.discover_functions

    def discover_labelled(app: Any, stage: str) -> list[Any]:
        return [replace(spec, handler=labelled(spec.resource_name, spec.handler)) for spec in discover(app, stage)]

    monkeypatch.setattr(pipeline_module, "discover_functions", discover_labelled)
    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    with pipeline_stage() as stage:
        yield calls, stage


def _exercise_api(stage: PipelineStage) -> str:
    """Every route, through Chalice's local gateway; returns a buyer's valid token."""
    client = Client(application.app)

    def call(method: str, path: str, body: Any = None, token: str | None = None, **headers: str) -> Any:
        all_headers = {"Content-Type": "application/json", **headers}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        raw = None if body is None else json.dumps(body)
        response = getattr(client.http, method.lower())(path, headers=all_headers, body=raw)
        assert response.status_code < 500, (method, path, response.body)
        return json.loads(response.body) if response.body else None

    password = "Sup3r-secret"
    with acting_as("api_handler"):
        user = call("POST", "/users", {"email": "buyer@example.com", "password": password, "name": "Buyer"})
        call("POST", "/users", {"email": "admin@example.com", "password": password, "name": "Admin"})
    stage.container.users.grant_admin("admin@example.com")  # make admin's path, not a function's
    with acting_as("api_handler"):
        token = call("POST", "/auth/login", {"email": "buyer@example.com", "password": password})["access_token"]
        admin = call("POST", "/auth/login", {"email": "admin@example.com", "password": password})["access_token"]
        call("GET", f"/users/{user['user_id']}", token=token)
        product = call("POST", "/products", {"name": "Mug", "category": "kitchen", "price": 12.5, "stock": 9}, admin)
        call("PATCH", f"/products/{product['product_id']}", {"stock": 8}, admin)
        call("GET", "/products")
        call("GET", "/products?category=kitchen")
        call("GET", f"/products/{product['product_id']}")
        order = {
            "items": [{"product_id": product["product_id"], "quantity": 1}],
            "shipping_address": {
                "name": "A",
                "line1": "1 Road",
                "city": "London",
                "postal_code": "N1",
                "country": "GB",
            },
            "payment_method": {"type": "card", "token": "tok_success"},
        }
        placed = call("POST", "/orders", order, token, **{"Idempotency-Key": "key-1"})
        call("GET", "/orders", token=token)
        call("GET", f"/orders/{placed['order_id']}", token=token)
        call("POST", "/uploads", {"filename": "a.png", "content_type": "image/png", "size": 10}, token)
    return str(token)


def _exercise_pipeline(stage: PipelineStage) -> None:
    """Happy path, declined payment, out of stock, validation failure, and an aborted execution."""
    product = add_product(stage.container, stock=3)
    expensive = add_product(stage.container, stock=5, price="6000.00")
    orders = [
        place(stage.container, (product, 1)),
        place(stage.container, (product, 1), token="tok_declined"),
        place(stage.container, (product, 50)),
        place(stage.container, (expensive, 2)),
    ]
    while stage.deliver_orders():
        pass
    for order in orders:
        stage.wait_until_finished(order.order_id)
    stage.deliver_events()
    # A pending payment: the execution ends at AwaitPayment, the re-check resumes it (claim, StartExecution).
    pending = place(stage.container, (product, 1), token="tok_pending")
    aborted = place(stage.container, (product, 1), token="tok_pending")
    while stage.deliver_orders():
        pass
    for order in (pending, aborted):
        stage.wait_until_finished(order.order_id)
    # The status handler compensating an execution that died (a Standard workflow's event, or an operator's),
    # while its order waits for the payment re-check: before the re-checks run, so no resumed execution of
    # that order can complete it while it is being compensated (a race that made this test flaky).
    execution = next(e["executionArn"] for e in stage.executions() if e["name"] == aborted.order_id)
    detail = {
        "executionArn": execution,
        "stateMachineArn": stage.outputs["STATE_MACHINE_ARN"],
        "name": aborted.order_id,
        "status": "ABORTED",
    }
    event = {
        "version": "0",
        "id": "0b5c9a6e-1111-2222-3333-444455556666",
        "account": ACCOUNT,
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [execution],
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": detail,
    }
    stage.invoke("handle_workflow_event", event)
    assert stage.deliver_rechecks(expected=2) == 2  # the two delayed messages may fall due in different polls
    stage.wait_until_finished(f"{pending.order_id}-check1")  # the aborted order's re-check resumes nothing
    fates = [stage.container.order_progress.get(o.order_id) for o in (pending, aborted)]
    assert [f.status.value if f else None for f in fates] == ["COMPLETED", "FAILED"]
    for task in ("check_payment_status", "refund_payment", "compensate_order"):  # rare branches: invoked directly
        stage.invoke(task, {"order_id": orders[0].order_id})
    if "ecommerce-backend-local-cost_optimizer" in stage.emulator.names:  # the scheduled cost optimizer
        scheduled = {**event, "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        stage.invoke("cost_optimizer", scheduled)
    _exercise_watchdog(stage, {**event, "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})


def _exercise_watchdog(stage: PipelineStage, scheduled: dict[str, Any]) -> None:
    """An order left waiting for a re-check that never comes, past its deadline: the sweep compensates it."""
    stalled = place(stage.container, (add_product(stage.container, stock=2), 1), token="tok_pending_99")
    while stage.deliver_orders():
        pass
    stage.wait_until_finished(stalled.order_id)
    stage.client("dynamodb").update_item(  # time passing: the deadline moved into the past
        TableName=stage.container.settings.orders_table,
        Key={"order_id": {"S": stalled.order_id}},
        UpdateExpression="SET deadline_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    stage.invoke("sweep_stalled_orders", scheduled)
    found = stage.container.order_progress.get(stalled.order_id)
    assert found is not None and found.status.value == "FAILED"


def test_given_the_handlers_on_moto_when_every_path_runs_then_each_call_is_granted_by_its_own_policy(
    recorded: tuple[list[Call], PipelineStage],
) -> None:
    calls, stage = recorded
    # WHEN every route and every pipeline path runs
    token = _exercise_api(stage)
    _exercise_pipeline(stage)
    # AND the authorizer runs as API Gateway runs it: with a valid token, so it loads the keys and reads
    # the caller's record (a forged token fails before the read, which hid a missing grant)
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": "arn:aws:execute-api:x"}
    with acting_as("jwt_auth"):
        assert application.jwt_auth(event, None)["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    # A presigned POST is signed locally: S3 checks the signer's s3:PutObject when the browser posts.
    uploads = f"arn:aws:s3:::{stage.outputs['UPLOADS_BUCKET']}/uploads/u/file.png"
    calls.append(("api_handler", "s3:PutObject", uploads))

    # THEN every recorded call is allowed by the calling function's own policy
    template = stage_template("local")
    pool_arn = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{stage.outputs['USER_POOL_ID']}"
    policies = {
        f: concrete(policy_document(f, "local", template, xray=False), "aws", REGION, ACCOUNT, pool_arn)
        for f in FUNCTION_GRANTS
    }
    denied = sorted({c for c in calls if not _allowed(policies[c[0]], c[0], c[1], c[2])})
    assert not denied, "calls not granted:\n" + "\n".join(map(str, denied))
    # AND every function of the app was exercised
    assert {c[0] for c in calls} >= set(app_functions())


def _allowed(policy: dict[str, Any], function: str, action: str, arn: str) -> bool:
    """IAM's decision (the local stage's evaluator) for a session of the function's role."""
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/ecommerce-backend-local-{function}/{function}"
    return evaluate(Request(action, arn, principal_arn=session), {"policy": policy}).allowed
