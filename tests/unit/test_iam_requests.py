"""From a request to the embedded AWS to what IAM authorises (localstage/iam/wire.py, actions.py),
and the refusal each service answers (errors.py), parsed by botocore as it parses AWS's."""

from __future__ import annotations

import io
import json
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.model import OperationModel

from localstage.iam.actions import Call, Target, targets
from localstage.iam.errors import denial
from localstage.iam.policy import Decision
from localstage.iam.stage import IamConfigError, IamOptions, Revocation, revoked
from localstage.iam.wire import call_of, form_post_call, post_form_fields, signer_of

pytestmark = pytest.mark.unit

ACCOUNT, REGION = "123456789012", "us-east-1"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s"


def call(service: str, operation: str, **params: Any) -> Call:
    return Call(service, operation, params, REGION, ACCOUNT)


# -- actions: API call -> (action, resource) ------------------------------------------------------------


def test_given_a_transaction_then_each_item_is_its_own_action_on_its_own_table() -> None:
    transaction = call(
        "dynamodb",
        "TransactWriteItems",
        TransactItems=[{"Put": {"TableName": "orders"}}, {"ConditionCheck": {"TableName": "keys"}}],
    )
    assert [(t.action, t.resource) for t in targets(transaction)] == [
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"),
        ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/keys"),
    ]


def test_given_a_query_on_an_index_then_the_resource_is_the_index() -> None:
    [target] = targets(call("dynamodb", "Query", TableName="users", IndexName="EmailIndex"))
    assert target.resource == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/users/index/EmailIndex"


def test_given_renamed_operations_then_the_iam_action_names_are_used() -> None:
    assert targets(call("lambda", "Invoke", FunctionName="f"))[0].action == "lambda:InvokeFunction"
    assert targets(call("sqs", "DeleteMessageBatch", QueueUrl="http://h/1/q"))[0].action == "sqs:DeleteMessage"
    listing = targets(call("s3", "ListObjectsV2", Bucket="b", Key=""))[0]
    assert (listing.action, listing.resource) == ("s3:ListBucket", "arn:aws:s3:::b")
    assert targets(call("stepfunctions", "StartExecution", stateMachineArn="arn:sm"))[0] == Target(
        "states:StartExecution", "arn:sm"
    )


def test_given_put_events_then_one_target_per_bus_with_the_sources_as_condition_keys() -> None:
    entries = [
        {"EventBusName": "shop", "Source": "ecommerce.orders", "DetailType": "Order Created"},
        {"Source": "ecommerce.orders", "DetailType": "Order Created"},
    ]
    found = targets(call("events", "PutEvents", Entries=entries))
    assert [t.resource for t in found] == [
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/shop",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
    ]
    assert found[0].context == {"events:source": ["ecommerce.orders"], "events:detail-type": ["Order Created"]}


def test_given_a_secret_by_name_then_its_full_arn_is_authorised() -> None:
    full = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:key-AbCdEf"
    [target] = targets(call("secretsmanager", "GetSecretValue", SecretId="key"), lambda name: full)
    assert target.resource == full


def test_given_an_operation_the_stage_does_not_model_then_only_a_star_grant_could_allow_it() -> None:
    assert targets(call("kinesis", "PutRecord", StreamName="s")) == [Target("kinesis:PutRecord", "*")]
    assert targets(call("sts", "GetCallerIdentity")) == []  # needs no permission on AWS


# -- wire: HTTP request -> API call ---------------------------------------------------------------------


def signed_environ(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The WSGI environ of the request botocore would send, signed with a role session's key."""
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name=REGION,
        endpoint_url="http://127.0.0.1:4566",
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key="s",
        aws_session_token="t",
    )
    model: OperationModel = client.meta.service_model.operation_model(operation)
    request_dict = client._convert_to_request_dict(params, model, endpoint_url="http://127.0.0.1:4566", context={})
    request = AWSRequest(
        method=request_dict["method"],
        url=request_dict["url"],
        data=request_dict["body"],
        headers=request_dict["headers"],
    )
    from botocore.auth import SigV4Auth

    SigV4Auth(Credentials("ASIAEXAMPLE", "s", "t"), model.service_model.signing_name, REGION).add_auth(request)
    prepared = request.prepare()
    path, _, query = prepared.url.split("4566", 1)[1].partition("?")
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": prepared.method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": prepared.headers.get("Content-Type", ""),
        "wsgi.input": io.BytesIO(body),
        "test.body": body,
    }
    for name, value in prepared.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value if isinstance(value, str) else value.decode()
    return environ


@pytest.mark.parametrize(
    ("service", "operation", "params", "action", "resource"),
    [
        (
            "dynamodb",
            "GetItem",
            {"TableName": "users", "Key": {"k": {"S": "v"}}},
            "dynamodb:GetItem",
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/users",
        ),
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/q", "MessageBody": "x"},
            "sqs:SendMessage",
            f"arn:aws:sqs:{REGION}:{ACCOUNT}:q",
        ),
        (
            "sns",
            "Publish",
            {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:t", "Message": "m"},
            "sns:Publish",
            f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
        ),
        (
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m"},
            "states:StartExecution",
            "arn:aws:states:us-east-1:1:stateMachine:m",
        ),
        (
            "lambda",
            "GetFunctionConfiguration",
            {"FunctionName": "f", "Qualifier": "live"},
            "lambda:GetFunctionConfiguration",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:live",
        ),
        ("lambda", "ListFunctions", {}, "lambda:ListFunctions", "*"),
        ("s3", "GetObject", {"Bucket": "reports", "Key": "a/b.json"}, "s3:GetObject", "arn:aws:s3:::reports/a/b.json"),
        ("s3", "ListObjectsV2", {"Bucket": "reports", "Prefix": "a/"}, "s3:ListBucket", "arn:aws:s3:::reports"),
        (
            "cloudwatch",
            "GetMetricData",
            {"MetricDataQueries": [], "StartTime": 0, "EndTime": 1},
            "cloudwatch:GetMetricData",
            "*",
        ),
        (
            "cognito-idp",
            "AdminGetUser",
            {"UserPoolId": "us-east-1_x", "Username": "u"},
            "cognito-idp:AdminGetUser",
            f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/us-east-1_x",
        ),
    ],
)
def test_given_a_request_botocore_signs_when_read_off_the_wire_then_the_same_action_and_resource(
    service: str, operation: str, params: dict[str, Any], action: str, resource: str
) -> None:
    environ = signed_environ(service, operation, params)
    signer = signer_of(environ)
    assert signer is not None and signer.access_key == "ASIAEXAMPLE" and signer.service == service
    found = targets(call_of(environ, signer, ACCOUNT))
    assert [(t.action, t.resource) for t in found] == [(action, resource)]
    # AND moto still reads the whole body
    assert environ["wsgi.input"].read() == environ["test.body"]


def test_given_a_browser_upload_then_the_signer_and_key_come_from_the_form_and_the_file_streams_on() -> None:
    boundary = "XyZ"
    fields = {
        "key": "uploads/u1/${filename}",
        "x-amz-credential": f"ASIAFORM/20261201/{REGION}/s3/aws4_request",
        "policy": "e30=",
    }
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    payload = b"\x89PNG" + b"0" * 50_000
    body = "".join(parts).encode() + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    environ = {
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    read, filename = post_form_fields(environ)
    assert filename == "a.png" and read["x-amz-credential"].startswith("ASIAFORM/")
    signer, upload = form_post_call("uploads-bucket", read, filename, ACCOUNT) or (None, None)
    assert signer is not None and signer.access_key == "ASIAFORM"
    assert targets(upload) == [Target("s3:PutObject", "arn:aws:s3:::uploads-bucket/uploads/u1/a.png")]  # type: ignore[arg-type]
    # AND moto reads the whole body, untouched
    assert environ["wsgi.input"].read() == body


# -- errors: what botocore makes of the refusal ---------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "params", "code"),
    [
        ("dynamodb", "GetItem", {"TableName": "users", "Key": {"k": {"S": "v"}}}, "AccessDeniedException"),
        ("sqs", "SendMessage", {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/q", "MessageBody": "x"}, "AccessDenied"),
        ("sns", "Publish", {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:t", "Message": "m"}, "AuthorizationError"),
        ("s3", "GetObject", {"Bucket": "b", "Key": "k"}, "AccessDenied"),
        ("lambda", "ListFunctions", {}, "AccessDeniedException"),
        (
            "events",
            "PutEvents",
            {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]},
            "AccessDeniedException",
        ),
        ("cloudwatch", "GetMetricData", {"MetricDataQueries": [], "StartTime": 0, "EndTime": 1}, "AccessDenied"),
    ],
)
def test_given_a_refusal_when_botocore_parses_it_then_the_code_and_message_are_awss(
    service: str, operation: str, params: dict[str, Any], code: str
) -> None:
    environ = signed_environ(service, operation, params)
    signer = signer_of(environ)
    assert signer is not None
    api_call = call_of(environ, signer, ACCOUNT)
    target = targets(api_call)[0]
    decision = Decision(False, f"no identity-based policy allows the {target.action} action")
    status, headers, body = denial(environ, api_call, SESSION, target, decision)
    client = botocore.session.get_session().create_client(
        service, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    # As botocore receives them: case-insensitive headers
    parser_response = {"status_code": int(status.split()[0]), "headers": HeadersDict(headers), "body": body}
    model = client.meta.service_model.operation_model(operation)
    from botocore.parsers import create_parser

    parsed = create_parser(client.meta.service_model.resolved_protocol).parse(parser_response, model.output_shape)
    error = ClientError(parsed, operation)
    assert error.response["Error"]["Code"] == code
    expected = f"User: {SESSION} is not authorized to perform: {target.action}"
    assert str(error.response["Error"]["Message"]).startswith(expected)
    assert f"because no identity-based policy allows the {target.action} action" in error.response["Error"]["Message"]


# -- the switches ---------------------------------------------------------------------------------------


def test_given_the_switches_then_options_parse_and_bad_ones_say_what_is_wrong() -> None:
    assert IamOptions.from_env({}) == IamOptions(True, ())
    assert not IamOptions.from_env({"LOCAL_IAM": "off"}).enforce
    drill = IamOptions.from_env({"LOCAL_IAM_REVOKE": "jwt_auth:dynamodb:GetItem, api_handler:sns:Publish"})
    assert drill.revoke == (Revocation("jwt_auth", "dynamodb:GetItem"), Revocation("api_handler", "sns:Publish"))
    with pytest.raises(IamConfigError, match="'on' or 'off'"):
        IamOptions.from_env({"LOCAL_IAM": "maybe"})
    with pytest.raises(IamConfigError, match="jwt_auth:dynamodb:GetItem"):
        IamOptions.from_env({"LOCAL_IAM_REVOKE": "jwt_auth"})
    with pytest.raises(IamConfigError, match="needs IAM enforced"):
        IamOptions.from_env({"LOCAL_IAM": "off", "LOCAL_IAM_REVOKE": "jwt_auth:dynamodb:GetItem"})


def test_given_a_revocation_then_only_that_action_goes_and_unknown_grants_are_refused() -> None:
    policies = {
        "jwt_auth": {
            "Statement": [
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": ["s"]},
                {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": ["t"]},
            ]
        }
    }
    after = revoked(policies, [Revocation("jwt_auth", "dynamodb:getitem")])
    assert json.dumps(after["jwt_auth"]["Statement"]) == json.dumps(policies["jwt_auth"]["Statement"][:1])
    assert len(policies["jwt_auth"]["Statement"]) == 2  # the input is not changed
    with pytest.raises(IamConfigError, match="not granted sns:Publish; it has dynamodb:GetItem"):
        revoked(policies, [Revocation("jwt_auth", "sns:Publish")])
    with pytest.raises(IamConfigError, match="no function 'nope'"):
        revoked(policies, [Revocation("nope", "sns:Publish")])


def test_given_the_replayed_upload_when_werkzeug_parses_it_then_every_field_and_the_file_arrive() -> None:
    from werkzeug.formparser import parse_form_data

    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nuploads/k\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="x-amz-credential"\r\n\r\nASIAX/20261201/{REGION}/s3/aws4_request\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n'
        ).encode()
        + b"z" * 100_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    post_form_fields(environ)
    # WHEN moto's werkzeug parses the form from what the middleware put back
    _, form, files = parse_form_data(environ)
    # THEN nothing was lost
    assert form["key"] == "uploads/k" and files["file"].read() == b"z" * 100_000


def test_given_a_sigv2_form_then_its_access_key_signs_the_upload() -> None:
    fields = {"key": "uploads/u/a.png", "awsaccesskeyid": "ASIAV2", "signature": "x", "policy": "e30="}
    signed = form_post_call("b", fields, "a.png", ACCOUNT)
    assert signed is not None and signed[0].access_key == "ASIAV2"
    assert targets(signed[1]) == [Target("s3:PutObject", "arn:aws:s3:::b/uploads/u/a.png")]
    assert form_post_call("b", {"key": "k"}, None, ACCOUNT) is None  # unsigned: S3's own answer, not IAM's
