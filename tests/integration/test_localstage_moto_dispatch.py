"""moto's answers on the direct path (localstage/moto_dispatch.py) are Flask's answers: status, headers
and body, for each service the stage calls, errors and HEAD included."""

from __future__ import annotations

import io
from typing import Any

import boto3
import botocore.awsrequest
import botocore.exceptions
import pytest
from flask import Flask
from urllib3 import HTTPHeaderDict
from urllib3.response import HTTPResponse

from localstage import inprocess
from localstage.moto_dispatch import dispatch_directly
from localstage.patches import Patches
from localstage.server import REGION, EmbeddedAws
from tests.integration.test_localstage_inprocess import _client as client_for
from tests.integration.test_localstage_inprocess import aws

pytestmark = pytest.mark.integration
__all__ = ["aws"]  # the fixture: an embedded AWS served in process, shared with the transport's tests

Answer = tuple[str, list[tuple[str, str]], bytes]


def _client(service: str, embedded: EmbeddedAws) -> Any:
    return client_for(service, embedded.endpoint)


def _serve(dispatcher: Any, environ: dict[str, Any]) -> Answer:
    started: list[Any] = []
    body = b"".join(dispatcher(environ, lambda status, headers, exc_info=None: started.extend([status, headers])))
    return started[0], list(started[1]), body


def _same_but_request_ids(answer: Answer) -> Answer:
    """The answer with each request id (random per request) replaced by a placeholder."""
    status, headers, body = answer
    ids = [value for name, value in headers if name.lower() in ("x-amzn-requestid", "x-amz-request-id")]
    for request_id in ids:
        body = body.replace(request_id.encode(), b"<request id>")
    named = [(name, "<request id>" if value in ids else value) for name, value in headers]
    return status, named, body


def _compared(client: Any, dispatcher: Any, answers: list[tuple[Answer, Answer]]) -> Any:
    """Answer each call of ``client`` twice, through Flask and directly, and keep both answers."""

    def both(request: Any, **_: Any) -> Any:
        body = inprocess.request_body(request.body)

        def environ() -> dict[str, Any]:
            return inprocess.wsgi_environ(request.method, request.url, request.headers, body)

        through_flask = _serve(dispatcher, environ())
        with Patches() as patches:
            dispatch_directly(patches)
            direct = _serve(dispatcher, environ())
        answers.append((through_flask, direct))
        status, headers, content = direct
        code = int(status.split()[0])
        raw = HTTPResponse(
            body=io.BytesIO(content), headers=HTTPHeaderDict(headers), status=code, preload_content=False,
            decode_content=False, request_method=request.method, enforce_content_length=False,
        )  # fmt: skip
        return botocore.awsrequest.AWSResponse(request.url, code, raw.headers, raw)

    client.meta.events.register("before-send", both)
    return client


@pytest.fixture
def dispatcher() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def test_given_the_direct_path_then_each_answer_is_flask_s_status_headers_and_body(
    aws: EmbeddedAws, dispatcher: Any
) -> None:
    # GIVEN state in each service the stage calls, made through the embedded AWS
    dynamodb, sqs, s3 = _client("dynamodb", aws), _client("sqs", aws), _client("s3", aws)
    dynamodb.create_table(
        TableName="direct",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="direct", Item={"k": {"S": "a"}, "price": {"N": "12.50"}})
    queue = sqs.create_queue(QueueName="direct")["QueueUrl"]
    s3.create_bucket(Bucket="direct")
    s3.put_object(Bucket="direct", Key="a file+é.txt", Body=b"x" * 1000, Metadata={"my_key": "v"})
    topic = _client("sns", aws).create_topic(Name="direct")["TopicArn"]
    secret = _client("secretsmanager", aws).create_secret(Name="direct", SecretString="s")["ARN"]
    _client("logs", aws).create_log_group(logGroupName="direct")
    # WHEN reads and refusals of each are answered through Flask and directly
    answers: list[tuple[Answer, Answer]] = []

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:  # one per service: creating clients is most of this test's time
        if service not in clients:
            clients[service] = _compared(session.client(service, endpoint_url=aws.endpoint), dispatcher, answers)
        return clients[service]

    client("dynamodb").get_item(TableName="direct", Key={"k": {"S": "a"}}, ConsistentRead=True)
    client("dynamodb").describe_table(TableName="direct")
    with pytest.raises(botocore.exceptions.ClientError, match="ResourceNotFoundException"):
        client("dynamodb").get_item(TableName="missing", Key={"k": {"S": "a"}})
    client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    client("sns").get_topic_attributes(TopicArn=topic)  # the query protocol: a form body, XML back
    with pytest.raises(botocore.exceptions.ClientError, match="NotFound"):
        client("sns").get_topic_attributes(TopicArn=topic + "-missing")
    client("s3").head_object(Bucket="direct", Key="a file+é.txt")  # HEAD: a length, no body
    client("s3").get_object(Bucket="direct", Key="a file+é.txt")["Body"].read()
    client("s3").list_objects_v2(Bucket="direct")
    client("secretsmanager").get_secret_value(SecretId=secret)
    client("logs").describe_log_groups(logGroupNamePrefix="direct")
    client("sts").get_caller_identity()
    client("lambda").list_functions()  # rest-json: a route with a path
    client("stepfunctions").list_state_machines()
    client("events").describe_event_bus()
    # THEN each direct answer is Flask's, CORS header included
    assert len(answers) == 16
    for through_flask, direct in answers:
        assert _same_but_request_ids(direct) == _same_but_request_ids(through_flask)
        assert ("Access-Control-Allow-Origin", "*") in direct[1]
    statuses = [int(direct[0].split()[0]) for _, direct in answers]
    assert statuses.count(200) == 14 and statuses.count(400) + statuses.count(404) == 2


def test_given_the_direct_path_when_the_sdk_calls_then_flask_is_not_entered(
    aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    wsgi_app = Flask.wsgi_app

    def counted(self: Flask, environ: dict[str, Any], start_response: Any) -> Any:
        entered.append(environ["PATH_INFO"])
        return wsgi_app(self, environ, start_response)

    monkeypatch.setattr(Flask, "wsgi_app", counted)
    sqs = _client("sqs", aws)
    sqs.list_queues()
    assert len(entered) == 1  # moto's app, as always
    with Patches() as patches:
        dispatch_directly(patches)
        sqs.list_queues()
        assert len(entered) == 1  # answered without it
        # what the SDK never sends goes through Flask as before: a browser's CORS request, moto's own API
        browser = _client("sqs", aws)
        browser.meta.events.register("before-sign", lambda request, **_: request.headers.add_header("Origin", "x"))
        browser.list_queues()
        environ = inprocess.wsgi_environ("GET", f"{aws.endpoint}/moto-api/", {}, b"")
        environ["wsgi.input"] = io.BytesIO(b"")
        status, _, _ = _serve(aws._server._server.app, environ)  # type: ignore[attr-defined]
        assert status.startswith("200")  # its page renders a template: it needs Flask
        assert entered[1:] == ["/", "/moto-api/"]


def test_given_the_direct_path_when_a_host_is_asked_again_then_its_backend_is_not_searched_again(
    dispatcher: Any,
) -> None:
    class Counted(list[Any]):
        searched = 0

        def __iter__(self) -> Any:
            Counted.searched += 1
            return super().__iter__()

    dispatcher.backend_url_patterns = Counted(dispatcher.backend_url_patterns)
    hosts = ["sqs.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com"]
    moto_s = [dispatcher.get_backend_for_host(host) for host in hosts]
    assert moto_s == ["sqs", "dynamodb", "sqs"] and Counted.searched == 3
    with Patches() as patches:
        dispatch_directly(patches)
        Counted.searched = 0
        assert [dispatcher.get_backend_for_host(host) for host in hosts * 2] == moto_s * 2
        assert Counted.searched == 2  # each host once
        assert dispatcher.get_backend_for_host("nothing.example.com") is None
        assert dispatcher.get_backend_for_host(None) is None
